package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/berth-registry/berth/store"
)

// DU asks for the disk usage of the named repositories, or of all.
type DU struct {
	Repos []string `args:"REPO" json:"repos,omitempty"`
	JSON  bool     `flag:"json" usage:"print JSON" json:"json,omitempty"`
}

// Usage is the result of du.
type Usage struct {
	Repos []store.RepoUsage `json:"repos"`
	JSON  bool              `json:"json,omitempty"` // render as JSON
	// Total is the whole store's, when du named no repository.
	Total *store.Stats `json:"total,omitempty"`
	// Quotas are the limits that bound the listed repositories, with
	// their usage.
	Quotas []store.Quota `json:"quotas,omitempty"`
}

// repoUsageJSON is one element of `du --json`.
type repoUsageJSON struct {
	Repository    string `json:"repository"`
	Exclusive     int64  `json:"exclusive_bytes"`
	Shared        int64  `json:"shared_bytes"`
	Blobs         int    `json:"blobs"`
	SharedBlobs   int    `json:"shared_blobs"`
	Manifests     int    `json:"manifests"`
	ManifestBytes int64  `json:"manifest_bytes"`
}

var DUOp = register(&Op[DU, Usage]{
	Name: "du",
	Do: func(_ context.Context, env *Env, _ *Task, req DU) (*Usage, error) {
		for _, repo := range req.Repos {
			if err := store.ValidateRepository(repo); err != nil {
				return nil, err
			}
		}
		usage, err := env.Store.Usage(req.Repos...)
		if errors.Is(err, store.ErrNameUnknown) {
			return nil, err // it names the repository
		}
		if err != nil {
			return nil, fmt.Errorf("du: %w", err)
		}
		res := &Usage{Repos: usage, JSON: req.JSON}
		if res.Quotas, err = quotasOf(env.Store, usage); err != nil {
			return nil, fmt.Errorf("du: %w", err)
		}
		if len(req.Repos) == 0 {
			st, err := env.Store.Stats()
			if err != nil {
				return nil, fmt.Errorf("du: %w", err)
			}
			res.Total = &st
		}
		return res, nil
	},
	Render: func(w Output, res *Usage) error {
		if res.JSON {
			out := make([]repoUsageJSON, len(res.Repos))
			for i, u := range res.Repos {
				out[i] = repoUsageJSON{u.Repo, u.Exclusive, u.Shared, u.Blobs, u.SharedBlobs, u.Manifests, u.ManifestBytes}
			}
			enc := json.NewEncoder(w.Out)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		}
		tw := tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "EXCLUSIVE\tSHARED\tBLOBS\tMANIFESTS\t\tREPOSITORY")
		for _, u := range res.Repos {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t\t%s\n", HumanBytes(u.Exclusive), HumanBytes(u.Shared), u.Blobs, u.Manifests, u.Repo)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(res.Quotas) > 0 {
			if err := writeQuotas(w, res.Quotas); err != nil {
				return err
			}
		}
		if res.Total == nil {
			return nil
		}
		// Blobs shared between repositories are counted once here, so the
		// total is what DATA/blobs holds, not the sum of the columns;
		// manifests belong to one repository each.
		st := res.Total
		var manifestBytes int64
		for _, u := range res.Repos {
			manifestBytes += u.ManifestBytes
		}
		_, err := fmt.Fprintf(w.Out, "total: %s: %s of %s (each counted once), %s of %s, in %s; uploads in progress: %s\n",
			HumanBytes(st.BlobBytes+manifestBytes), HumanBytes(st.BlobBytes), plural(st.Blobs, "blob"),
			HumanBytes(manifestBytes), plural(st.Manifests, "manifest"),
			plural(st.Repositories, "repository"), HumanBytes(st.UploadBytes))
		return err
	},
})

// quotasOf returns the quotas that bound any of the repositories.
func quotasOf(s *store.Store, usage []store.RepoUsage) ([]store.Quota, error) {
	all, err := s.Quotas()
	if err != nil || len(all) == 0 {
		return nil, err
	}
	var out []store.Quota
	for _, q := range all {
		for _, u := range usage {
			if q.Kind == store.QuotaRepository && q.Name == u.Repo || q.Kind == store.QuotaNamespace && q.Name == store.NamespaceOf(u.Repo) {
				out = append(out, q)
				break
			}
		}
	}
	return out, nil
}

// HumanBytes formats n bytes in binary units with three significant
// digits at most: "512 B", "1.5 KiB", "23.4 MiB", "118 GiB".
func HumanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v < 100 {
		return fmt.Sprintf("%.1f %s", v, units[i])
	}
	return fmt.Sprintf("%.0f %s", v, units[i])
}
