package handlers

// Console page of the audit log (admin): who did what, when, from which address; newest first,
// a page at a time, filtered by user (email or key name), action and dates.

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

// auditPageSize is how many entries one page of the audit log shows.
const auditPageSize = 50

// auditView is the audit page's data.
type auditView struct {
	Actor, Action, From, To string // the filter as typed (dates as YYYY-MM-DD)
	Entries                 []models.AuditEntry
	Users                   []models.ConsoleUser // for the user filter's suggestions
	Next                    string               // the next (older) page's URL, "" on the last
	Errors                  map[string]string
}

func (cn *console) auditLog(c echo.Context) error {
	ctx := c.Request().Context()
	v := auditView{Actor: strings.TrimSpace(c.QueryParam("actor")), Action: strings.TrimSpace(c.QueryParam("action")),
		From: strings.TrimSpace(c.QueryParam("from")), To: strings.TrimSpace(c.QueryParam("to")), Errors: map[string]string{}}
	f := models.AuditFilter{Actor: v.Actor, Action: v.Action, Limit: auditPageSize + 1}
	// Dates are days in the shop's time zone; "to" includes its whole day.
	if v.From != "" {
		d, err := time.ParseInLocation(time.DateOnly, v.From, cn.s.tz)
		if err != nil {
			v.Errors["from"] = "must be a date such as 2026-12-01"
		}
		f.From = d
	}
	if v.To != "" {
		d, err := time.ParseInLocation(time.DateOnly, v.To, cn.s.tz)
		if err != nil {
			v.Errors["to"] = "must be a date such as 2026-12-31"
		}
		f.To = d.AddDate(0, 0, 1)
	}
	if b := c.QueryParam("before"); b != "" {
		f.Before, _ = strconv.ParseInt(b, 10, 64)
	}
	status := http.StatusOK
	if len(v.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	} else {
		entries, err := cn.s.db.FindAudit(ctx, f)
		if err != nil {
			return err
		}
		if len(entries) > auditPageSize {
			entries = entries[:auditPageSize]
			q := url.Values{}
			for k, val := range map[string]string{"actor": v.Actor, "action": v.Action, "from": v.From, "to": v.To} {
				if val != "" {
					q.Set(k, val)
				}
			}
			q.Set("before", strconv.FormatInt(entries[len(entries)-1].ID, 10))
			v.Next = "/console/audit?" + q.Encode()
		}
		v.Entries = entries
	}
	users, err := cn.s.db.FindUsers(ctx)
	if err != nil {
		return err
	}
	v.Users = users
	return cn.render(c, status, "audit", consolePage{Title: "Audit log", Nav: "audit", Data: v})
}
