package handlers

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/regulars/regulars/handlers/browsertest"
)

// Issue 15's console details in a real browser: the Delete segment button can be read (its
// text and background differ), a preview shows the member's barcode as a loaded image, a new
// campaign opens on a starter written for the shop, and the schedule form defaults to the
// installation's time zone.
func TestConsoleDetailsInABrowser(t *testing.T) {
	e := newCampaignConsole(t)
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	e.Server.reconfigure(t, func(c *Config) {
		c.Timezone = oslo
		c.Campaigns.From = "Vinyl shop <news@shop.example>"
		c.Campaigns.Shop.Color = "#aa3300"
	})
	email := e.createUser(t, "marketer")
	ctx := browsertest.New(t, 1280, 900, "")
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	run("log in",
		chromedp.Navigate(e.URL+"/console/login"),
		chromedp.WaitVisible(`#email`, chromedp.ByID),
		chromedp.SendKeys(`#email`, email, chromedp.ByID),
		chromedp.SendKeys(`#password`, consolePassword, chromedp.ByID),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`header.console nav`, chromedp.ByQuery),
	)

	// The delete button: white on red, not red on red. Contrast of the computed colours
	// (WCAG relative luminance) at least 4.5.
	var colours []string
	var contrast float64
	run("open a saved segment",
		chromedp.Navigate(e.URL+"/console/segments/"+strconv.FormatInt(e.segmentID, 10)),
		chromedp.WaitVisible(`form.seg-delete button`, chromedp.ByQuery),
		chromedp.Evaluate(`(function () {
			var s = getComputedStyle(document.querySelector('form.seg-delete button'));
			return [s.color, s.backgroundColor];
		})()`, &colours),
		chromedp.Evaluate(`(function () {
			function lum(c) {
				var v = c.match(/[\d.]+/g).slice(0, 3).map(function (x) {
					x = x / 255;
					return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
				});
				return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
			}
			var s = getComputedStyle(document.querySelector('form.seg-delete button'));
			var a = lum(s.color), b = lum(s.backgroundColor);
			return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
		})()`, &contrast),
	)
	if len(colours) != 2 || colours[0] == colours[1] || contrast < 4.5 {
		t.Errorf("Delete segment: text %v on background, contrast %.2f, want at least 4.5", colours, contrast)
	}

	// A new campaign opens on a starter; the offer starter shows the barcode in the preview.
	var subject string
	run("start a campaign from the offer starter",
		chromedp.Navigate(e.URL+"/console/campaigns/new"),
		chromedp.WaitVisible(`#starter-newsletter[aria-current]`, chromedp.ByQuery),
		chromedp.Click(`#starter-offer`, chromedp.ByID),
		chromedp.WaitVisible(`#starter-offer[aria-current]`, chromedp.ByQuery),
		chromedp.Value(`#f-subject`, &subject, chromedp.ByID),
		chromedp.SendKeys(`#f-name`, "Offer December", chromedp.ByID),
		chromedp.SetValue(`#f-segment`, strconv.FormatInt(e.segmentID, 10), chromedp.ByID),
		chromedp.Click(`#f-save`, chromedp.ByID),
		chromedp.WaitVisible(`p.flash`, chromedp.ByQuery),
		chromedp.WaitReady(`#camp-preview-frame[data-loaded]`, chromedp.ByQuery),
	)
	if !strings.Contains(subject, " treat for you at Vinyl shop") {
		t.Errorf("offer starter subject %q", subject)
	}
	var srcdoc, text string
	var ok bool
	run("read the preview",
		chromedp.AttributeValue(`#camp-preview-frame`, "srcdoc", &srcdoc, &ok, chromedp.ByID),
		chromedp.TextContent(`#camp-preview-text`, &text, chromedp.ByID),
	)
	if !strings.Contains(srcdoc, "background:#aa3300") || !strings.Contains(srcdoc, "Kari") || strings.Contains(srcdoc, "cid:") {
		t.Errorf("preview of the offer starter: %s", srcdoc)
	}
	// The preview frame inherits the page's policy: the mail's inline styles must be allowed.
	var styled bool
	run("see the preview's styles apply",
		chromedp.Evaluate(`(function () {
			var f = document.createElement('iframe');
			f.setAttribute('sandbox', 'allow-same-origin');
			f.srcdoc = '<p id="x" style="color: rgb(170, 51, 0)">x</p>';
			document.body.appendChild(f);
			return new Promise(function (done) {
				f.onload = function () {
					var ok = getComputedStyle(f.contentDocument.getElementById('x')).color === 'rgb(170, 51, 0)';
					f.remove();
					done(ok);
				};
			});
		})()`, &styled, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
	)
	if !styled {
		t.Error("inline styles of a mail preview are blocked by the page's Content-Security-Policy")
	}
	if !strings.Contains(text, "Show this barcode at the till:") || !strings.Contains(text, e.cards[0]) {
		t.Errorf("the text part was not made from the HTML: %q", text)
	}
	// The preview frame is sandboxed (its own origin, so its DOM is out of the page's reach):
	// load each of its images in the page, under the console's Content-Security-Policy, and
	// see that they decode.
	var widths []int
	run("load the preview's images",
		chromedp.Evaluate(`document.getElementById('camp-preview-frame').scrollIntoView(), true`, nil),
		chromedp.Evaluate(`(function () {
			var doc = new DOMParser().parseFromString(document.getElementById('camp-preview-frame').getAttribute('srcdoc'), 'text/html');
			window.__widths = null;
			var imgs = Array.prototype.map.call(doc.querySelectorAll('img'), function (i) { return i.getAttribute('src'); });
			Promise.all(imgs.map(function (src) {
				return new Promise(function (done) {
					var im = new Image();
					im.onload = function () { done(im.naturalWidth); };
					im.onerror = function () { done(0); };
					im.src = src;
				});
			})).then(function (w) { window.__widths = w; });
			return true;
		})()`, nil),
		chromedp.Poll(`window.__widths`, &widths, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if len(widths) == 0 {
		t.Error("the preview has no image: the barcode is missing")
	}
	for _, w := range widths {
		if w == 0 {
			t.Errorf("a preview image does not load: widths %v", widths)
		}
	}

	// Scheduling defaults to the installation's zone (REGULARS_TIMEZONE), not UTC.
	var zone, cronZone string
	run("read the schedule form",
		chromedp.Value(`#s-tz`, &zone, chromedp.ByID),
		chromedp.Value(`#s-cron-tz`, &cronZone, chromedp.ByID),
	)
	if zone != "Europe/Oslo" || cronZone != "Europe/Oslo" {
		t.Errorf("schedule zones %q and %q, want Europe/Oslo", zone, cronZone)
	}
}
