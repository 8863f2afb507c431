package campaigns

import (
	"strconv"
	"strings"
)

// ParseMessageID reads the run and member back from a campaign mail's Message-ID (MessageID's
// "run-<run id>.member-<member id>@<domain>", with or without angle brackets), so that a
// provider's bounce or complaint names the exact recipient row. ok is false for any other id:
// club mail, test sends, mail of another system.
func ParseMessageID(id string) (runID, memberID int64, ok bool) {
	id = strings.TrimSpace(id)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	local, _, found := strings.Cut(id, "@")
	if !found {
		return 0, 0, false
	}
	run, member, found := strings.Cut(local, ".")
	if !found {
		return 0, 0, false
	}
	run, okRun := strings.CutPrefix(run, "run-")
	member, okMember := strings.CutPrefix(member, "member-")
	if !okRun || !okMember {
		return 0, 0, false
	}
	r, err1 := strconv.ParseInt(run, 10, 64)
	m, err2 := strconv.ParseInt(member, 10, 64)
	if err1 != nil || err2 != nil || r <= 0 || m <= 0 {
		return 0, 0, false
	}
	return r, m, true
}
