package admin

import (
	"context"
	"fmt"
	"strconv"
)

// ACLMove moves rule number Number (from 1, as acl list shows it) to
// number To; the rules in between move by one. Since the first matching
// rule decides, this is how a rule is made to win over another.
type ACLMove struct {
	Number string `arg:"I" json:"number"`
	To     string `flag:"to" usage:"the rule's new number (required)" json:"to"`
}

// RuleMoved is the result of acl move.
type RuleMoved struct {
	From int `json:"from"`
	To   int `json:"to"`
}

var ACLMoveOp = register(&Op[ACLMove, RuleMoved]{
	Name: "acl move",
	Do: func(_ context.Context, env *Env, _ *Task, req ACLMove) (*RuleMoved, error) {
		rules, from, err := ruleNumbered(env, req.Number)
		if err != nil {
			return nil, err
		}
		if req.To == "" {
			return nil, fmt.Errorf("--to is required: the rule's new number, from 1 to %d", len(rules))
		}
		to, err := strconv.Atoi(req.To)
		if err != nil || to < 1 || to > len(rules) {
			return nil, fmt.Errorf("--to %s: want a number from 1 to %d", req.To, len(rules))
		}
		if err := env.Store.MoveRule(from-1, to-1); err != nil {
			return nil, fmt.Errorf("move access rule %d: %w", from, err)
		}
		return &RuleMoved{From: from, To: to}, nil
	},
	Render: func(w Output, res *RuleMoved) error {
		if res.From == res.To {
			_, err := fmt.Fprintf(w.Out, "rule %d stays where it is\n", res.From)
			return err
		}
		_, err := fmt.Fprintf(w.Out, "moved rule %d to %d\n", res.From, res.To)
		return err
	},
})
