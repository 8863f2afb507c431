package flows

import (
	"fmt"
	"time"

	"github.com/regulars/regulars/campaigns/segments"
)

// Instruction kinds of a Program.
const (
	OpMail    = "mail"
	OpWait    = "wait"
	OpIf      = "if"
	OpVoucher = "voucher"
)

// Op is one instruction. Next is where a member goes after it (len(Program) ends the flow); an
// if goes to Then or Else instead.
type Op struct {
	Kind       string
	Next       int
	Then, Else int
	Wait       time.Duration
	Rules      *segments.Node
	Mail       *Mail
	// Reward and Life: a voucher step's reward code and how long its vouchers are valid.
	Reward string
	Life   time.Duration
	// Path is the step's JSON path ("steps.2.then.0"), for reports and errors.
	Path string
	// MailNumber counts mail steps from 1 in reading order, for their names.
	MailNumber int
}

// Program is a flow's steps flattened in reading order: a member's place in the flow is an index
// into it (flow_entries.step).
type Program []Op

// Compile flattens steps (already checked by ParseInput) into a Program.
func Compile(steps []Step) (Program, error) {
	var prog Program
	// Indices are given in reading order first, then the jumps are filled in, since a step's
	// Next is the index of a sibling not numbered yet when its branches are.
	var number func(list []Step, path string) ([]int, error)
	mails := 0
	number = func(list []Step, path string) ([]int, error) {
		idx := make([]int, len(list))
		for i, s := range list {
			at := fmt.Sprintf("%s.%d", path, i)
			idx[i] = len(prog)
			op := Op{Path: at}
			switch {
			case s.Mail != nil:
				mails++
				op.Kind, op.Mail, op.MailNumber = OpMail, s.Mail, mails
			case s.Wait != "":
				d, err := time.ParseDuration(s.Wait)
				if err != nil {
					return nil, fmt.Errorf("%s.wait: %w", at, err)
				}
				op.Kind, op.Wait = OpWait, d
			case s.Voucher != "":
				life := s.ExpiresIn
				if life == "" {
					life = DefaultVoucherLife
				}
				d, err := time.ParseDuration(life)
				if err != nil {
					return nil, fmt.Errorf("%s.expires_in: %w", at, err)
				}
				op.Kind, op.Reward, op.Life = OpVoucher, s.Voucher, d
			case s.If != nil:
				tree, err := segments.Parse(s.If)
				if err != nil {
					return nil, fmt.Errorf("%s.if: %w", at, err)
				}
				op.Kind, op.Rules = OpIf, tree
			default:
				return nil, fmt.Errorf("%s: not a step this server runs", at)
			}
			prog = append(prog, op)
			if s.If != nil {
				if _, err := number(s.Then, at+".then"); err != nil {
					return nil, err
				}
				if _, err := number(s.Else, at+".else"); err != nil {
					return nil, err
				}
			}
		}
		return idx, nil
	}
	if _, err := number(steps, "steps"); err != nil {
		return nil, err
	}
	// Second walk, in the same order: fill in the jumps.
	pos := 0
	var link func(list []Step, cont int)
	link = func(list []Step, cont int) {
		starts := make([]int, len(list))
		// Where each sibling starts is known from the sizes of the ones before it.
		at := pos
		for i, s := range list {
			starts[i] = at
			at += size(s)
		}
		for i, s := range list {
			next := cont
			if i+1 < len(list) {
				next = starts[i+1]
			}
			me := pos
			prog[me].Next = next
			pos++
			if s.If != nil {
				prog[me].Then, prog[me].Else = next, next
				if len(s.Then) > 0 {
					prog[me].Then = pos
				}
				link(s.Then, next)
				if len(s.Else) > 0 {
					prog[me].Else = pos
				}
				link(s.Else, next)
			}
		}
	}
	link(steps, len(prog))
	return prog, nil
}

// size is how many instructions a step becomes.
func size(s Step) int {
	n := 1
	for _, c := range s.Then {
		n += size(c)
	}
	for _, c := range s.Else {
		n += size(c)
	}
	return n
}

// SameShape tells whether two programs move members the same way: the same instructions at the
// same indices with the same jumps. Steps may be edited while members are in a flow only if the
// shape stays, so that every member's step index still means the same step.
func SameShape(a, b Program) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Kind != b[i].Kind || a[i].Next != b[i].Next || a[i].Then != b[i].Then || a[i].Else != b[i].Else {
			return false
		}
	}
	return true
}
