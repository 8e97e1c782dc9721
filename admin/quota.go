package admin

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/berth-registry/berth/store"
)

// The quota operations (docs/retention.md): limits in bytes per namespace
// (a repository name's first component) or per repository.

// QuotaSet sets a limit.
type QuotaSet struct {
	Name       string `arg:"NAME" json:"name"`
	Limit      string `flag:"limit" usage:"the limit: bytes, or with a unit such as 500MiB, 20GiB, 1TB" json:"limit"`
	Repository bool   `flag:"repository" usage:"NAME is a repository, not a namespace" json:"repository,omitempty"`
}

// QuotaDel removes a limit.
type QuotaDel struct {
	Name       string `arg:"NAME" json:"name"`
	Repository bool   `flag:"repository" usage:"NAME is a repository, not a namespace" json:"repository,omitempty"`
}

// QuotaList lists the limits with their usage.
type QuotaList struct{}

// QuotaUsage is the result of quota list.
type QuotaUsage struct {
	Quotas []store.Quota `json:"quotas"`
}

func quotaKind(repository bool) string {
	if repository {
		return store.QuotaRepository
	}
	return store.QuotaNamespace
}

var QuotaSetOp = register(&Op[QuotaSet, Done]{
	Name: "quota set",
	Do: func(_ context.Context, env *Env, _ *Task, req QuotaSet) (*Done, error) {
		limit, err := ParseBytes(req.Limit)
		if err != nil {
			return nil, fmt.Errorf("--limit: %w", err)
		}
		kind := quotaKind(req.Repository)
		if err := env.Store.SetQuota(kind, req.Name, limit); err != nil {
			return nil, err
		}
		return &Done{Message: fmt.Sprintf("%s %s may hold %s; pushes beyond it get 403 DENIED", kind, req.Name, HumanBytes(limit))}, nil
	},
	Render: renderDone,
})

var QuotaDelOp = register(&Op[QuotaDel, Done]{
	Name: "quota del",
	Do: func(_ context.Context, env *Env, _ *Task, req QuotaDel) (*Done, error) {
		kind := quotaKind(req.Repository)
		if err := env.Store.DeleteQuota(kind, req.Name); err != nil {
			return nil, err
		}
		return &Done{Message: fmt.Sprintf("removed the quota of %s %s", kind, req.Name)}, nil
	},
	Render: renderDone,
})

var QuotaListOp = register(&Op[QuotaList, QuotaUsage]{
	Name: "quota list",
	Do: func(_ context.Context, env *Env, _ *Task, _ QuotaList) (*QuotaUsage, error) {
		qs, err := env.Store.Quotas()
		if err != nil {
			return nil, fmt.Errorf("quota list: %w", err)
		}
		return &QuotaUsage{Quotas: qs}, nil
	},
	Render: func(w Output, res *QuotaUsage) error { return writeQuotas(w, res.Quotas) },
})

// writeQuotas prints one line per quota: scope, usage, limit, percentage.
func writeQuotas(w Output, qs []store.Quota) error {
	tw := tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tUSED\tLIMIT\tUSE%")
	for _, q := range qs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d%%\n", q.Kind, q.Name, HumanBytes(q.Usage), HumanBytes(q.Limit), q.Usage*100/max(q.Limit, 1))
	}
	return tw.Flush()
}

// ParseBytes reads a size: a number of bytes, or a number with a unit
// (B, KiB, MiB, GiB, TiB in powers of 1024; KB, MB, GB, TB in powers of
// 1000; K, M, G, T as the binary ones).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	mult := map[string]float64{
		"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30,
		"t": 1 << 40, "tib": 1 << 40, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	}[strings.ToLower(unit)]
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || f <= 0 || f*mult > 1<<62 {
		return 0, fmt.Errorf("%q is not a size such as 500MiB or 20GiB", s)
	}
	return int64(f * mult), nil
}
