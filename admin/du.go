package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/berth-registry/berth/store"
)

// duCommand prints the disk usage per repository: the named ones, or all.
// Its flag json (boolean) prints JSON instead of a table.
var duCommand = Command{
	Name:  "du",
	Usage: "[REPO...] [--json]",
	Run:   runDU,
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

func runDU(_ context.Context, env *Env, args Args, stdio Stdio) error {
	asJSON, err := boolFlag(args, "json")
	if err != nil {
		return err
	}
	for _, repo := range args.Words {
		if err := store.ValidateRepository(repo); err != nil {
			return err
		}
	}
	usage, err := env.Store.Usage(args.Words...)
	if errors.Is(err, store.ErrNameUnknown) {
		return err // it names the repository
	}
	if err != nil {
		return fmt.Errorf("du: %w", err)
	}
	if asJSON {
		out := make([]repoUsageJSON, len(usage))
		for i, u := range usage {
			out[i] = repoUsageJSON{u.Repo, u.Exclusive, u.Shared, u.Blobs, u.SharedBlobs, u.Manifests, u.ManifestBytes}
		}
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "EXCLUSIVE\tSHARED\tBLOBS\tMANIFESTS\t\tREPOSITORY")
	for _, u := range usage {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t\t%s\n", HumanBytes(u.Exclusive), HumanBytes(u.Shared), u.Blobs, u.Manifests, u.Repo)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(args.Words) == 0 {
		st, err := env.Store.Stats()
		if err != nil {
			return fmt.Errorf("du: %w", err)
		}
		// Blobs shared between repositories are counted once here, so the
		// total is what DATA/blobs holds, not the sum of the columns;
		// manifests belong to one repository each.
		var manifestBytes int64
		for _, u := range usage {
			manifestBytes += u.ManifestBytes
		}
		fmt.Fprintf(stdio.Out, "total: %s: %s of %s (each counted once), %s of %s, in %s; uploads in progress: %s\n",
			HumanBytes(st.BlobBytes+manifestBytes), HumanBytes(st.BlobBytes), plural(st.Blobs, "blob"),
			HumanBytes(manifestBytes), plural(st.Manifests, "manifest"),
			plural(st.Repositories, "repository"), HumanBytes(st.UploadBytes))
	}
	return nil
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
