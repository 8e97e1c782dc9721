package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/berth-registry/berth/server/auth"
	"github.com/berth-registry/berth/store"
)

// maxConfig bounds how much of a config blob the image page reads.
const maxConfig = 4 << 20

// imageConfig is the part of an image config (image-spec config.md) the
// image page shows.
type imageConfig struct {
	Created      *time.Time `json:"created"`
	OS           string     `json:"os"`
	Architecture string     `json:"architecture"`
	Variant      string     `json:"variant"`
	Config       struct {
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		Env        []string          `json:"Env"`
		User       string            `json:"User"`
		WorkingDir string            `json:"WorkingDir"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
	History []struct {
		Created    *time.Time `json:"created"`
		CreatedBy  string     `json:"created_by"`
		EmptyLayer bool       `json:"empty_layer"`
	} `json:"history"`
}

// keyValue is one entry of a sorted map, for templates.
type keyValue struct{ Key, Value string }

func sorted(m map[string]string) []keyValue {
	out := make([]keyValue, 0, len(m))
	for k, v := range m {
		out = append(out, keyValue{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// image shows one manifest or index by digest: its layers, config, index
// children, annotations, referrers and raw JSON.
func (u *UI) image(c *fiber.Ctx, v *viewer) error {
	repo := c.Query("name")
	if err := u.mayPull(v, repo); err != nil {
		return err
	}
	d, err := store.ParseDigest(c.Query("digest"))
	if err != nil {
		return errStatus(fiber.StatusNotFound, "no such manifest")
	}
	m, err := u.st.Manifest(repo, store.Reference{Digest: d})
	if errors.Is(err, store.ErrManifestUnknown) {
		return errStatus(fiber.StatusNotFound, "no such manifest")
	}
	if err != nil {
		return err
	}
	pm, err := store.ParseManifest(m.MediaType, m.Body)
	if err != nil {
		return err
	}
	data := map[string]any{
		"Repo": repo, "Stored": m, "Manifest": pm, "Annotations": sorted(pm.Annotations),
		"Size": m.Size + contentSize(pm),
	}
	var raw bytes.Buffer
	if json.Indent(&raw, m.Body, "", "  ") == nil {
		data["Raw"] = raw.String()
	} else {
		data["Raw"] = string(m.Body)
	}
	if pm.Config != nil {
		cfg, err := u.readConfig(repo, pm.Config.Digest)
		if err != nil {
			return err
		}
		if cfg != nil {
			data["Config"] = cfg
			data["Labels"] = sorted(cfg.Config.Labels)
		}
	}
	refs, err := u.referrers(repo, d)
	if err != nil {
		return err
	}
	data["Referrers"] = refs
	canDelete, err := u.may(v, repo, auth.ActionDelete)
	if err != nil {
		return err
	}
	data["CanDelete"] = canDelete
	return u.render(c, v, "image", repo+"@"+string(d), data)
}

// readConfig reads and decodes the config blob d of repo; nil when it is
// absent, too large or not a JSON image config (an artifact's config).
func (u *UI) readConfig(repo string, d store.Digest) (*imageConfig, error) {
	f, info, err := u.st.OpenBlob(context.Background(), repo, d, 0, maxConfig+1)
	if errors.Is(err, store.ErrBlobUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info.Size > maxConfig {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(f, maxConfig))
	if err != nil {
		return nil, err
	}
	var cfg imageConfig
	if json.Unmarshal(body, &cfg) != nil {
		return nil, nil
	}
	return &cfg, nil
}
