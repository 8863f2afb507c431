package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models/dbtest"
)

// TestTemplateBombsLeaveServeSmall posts the campaigns of the issue that took serve from 62 MB to
// 1.4 GB (300 wide printf variables; 2,000 ran it out of memory) or held a core for hours (nested
// ranges over integers), and others like them, to a real serve process: each is refused with 422
// naming its field, and the process stays small and healthy.
func TestTemplateBombsLeaveServeSmall(t *testing.T) {
	env := campaignEnv(t, dbtest.URL(t), smtptest.New(t))
	srv := startServe(t, env)
	marketer := newAPIClient(srv.base, createKey(t, env, "--role", "marketer", "--name", "bombs"))
	printfBomb := strings.Repeat(`{{$x := printf "%01000000d" 1}}`, 2000)
	cases := []struct {
		name, field string
		campaign    map[string]any
	}{
		{"2,000 wide printf variables in the HTML", "html", map[string]any{"html": printfBomb}},
		{"2,000 wide printf variables in the text", "text", map[string]any{"text": printfBomb}},
		{"nested ranges over integers", "html", map[string]any{"html": `{{range 1000000}}{{range 1000000}}{{end}}{{end}}`}},
		{"output without end", "text", map[string]any{"text": `{{range 1000000000}}0123456789abcdef{{end}}`}},
		{"ranges nested 30 deep", "html", map[string]any{"html": strings.Repeat("{{range 1}}<p>", 30) + strings.Repeat("</p>{{end}}", 30)}},
		{"the member's link in an image", "html", map[string]any{"html": `<img src="https://elsewhere.example/?p={{.Links.Preferences}}">`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.campaign["name"], tc.campaign["subject"] = "Bomb", "Hi"
			raw, err := json.Marshal(tc.campaign)
			if err != nil {
				t.Fatal(err)
			}
			// The client gives up after 30 s: a generous bound for "it returned".
			status, body, _, err := marketer.do(http.MethodPost, "/api/v1/campaigns", raw)
			if err != nil {
				t.Fatalf("POST /api/v1/campaigns: %v", err)
			}
			if status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422: %s", status, body)
			}
			var problem struct {
				Error struct {
					Fields map[string]string `json:"fields"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &problem); err != nil || problem.Error.Fields[tc.field] == "" {
				t.Errorf("the 422 does not name the field %s: %s", tc.field, body)
			}
		})
	}
	peak := vmHWM(t, srv.cmd.Process.Pid)
	t.Logf("serve's peak resident memory after the bombs: %d MB", peak>>20)
	if limit := int64(300 << 20); peak > limit {
		t.Errorf("serve peaked at %d MB resident, want under %d MB", peak>>20, limit>>20)
	}
	resp, err := http.Get(srv.base + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz after the bombs: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz after the bombs: %d", resp.StatusCode)
	}
}

// vmHWM is the peak resident set size of process pid, from /proc/<pid>/status (Linux).
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skipf("no /proc status to read the peak memory from: %v", err)
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM line %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
