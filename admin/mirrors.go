package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-registry/berth/mirror"
	"github.com/berth-registry/berth/store"
)

// The mirror operations: upstream registries that berth caches
// (docs/mirror.md). A password is never listed or logged.

// MirrorAdd adds an upstream.
type MirrorAdd struct {
	Name          string        `arg:"NAME" json:"name"`
	URL           string        `flag:"url" usage:"the upstream registry, https://host[:port] (http:// for one without TLS)" json:"url"`
	User          string        `flag:"user" usage:"sign in upstream as this user (Basic, or the token flow it leads to)" json:"user,omitempty"`
	PasswordStdin bool          `flag:"password-stdin" usage:"read the upstream password from stdin" json:"-"`
	CAFile        string        `flag:"ca" usage:"PEM file of the CA the upstream's certificate chains to (default: the system roots)" json:"-"`
	TagTTL        time.Duration `flag:"tag-ttl" usage:"serve a cached tag this long before asking upstream again (one HEAD)" json:"tag_ttl"`
	Anonymous     bool          `flag:"anonymous" usage:"let clients without credentials pull this mirror's namespace" json:"anonymous,omitempty"`
	DockerHub     bool          `flag:"docker-hub" usage:"answer Docker's registry-mirrors requests (names without a host) from this mirror" json:"docker_hub,omitempty"`
	Strict        bool          `flag:"strict" usage:"an upstream 404 or 401 for a cached tag is final (default: serve the cache)" json:"strict,omitempty"`
	MaxSize       string        `flag:"max-size" usage:"above this size (e.g. 20GiB) evict the least recently pulled tags; empty: no cap" json:"max_size,omitempty"`
	// Password and CA are filled by Prepare, in the CLI process.
	Password string `json:"password,omitempty"`
	CA       string `json:"ca,omitempty"`
}

// MirrorAdded is the result of mirror add.
type MirrorAdded struct {
	Name string `json:"name"`
	Host string `json:"host"`
}

// maxCAFile bounds what --ca reads.
const maxCAFile = 1 << 20

var MirrorAddOp = register(&Op[MirrorAdd, MirrorAdded]{
	Name:     "mirror add",
	Defaults: MirrorAdd{TagTTL: 10 * time.Minute},
	Prepare: func(req *MirrorAdd, c Client) error {
		if req.PasswordStdin {
			pw, err := readPasswordStdin(c.In)
			if err != nil {
				return err
			}
			req.Password = string(pw)
		}
		if req.CAFile != "" {
			f, err := os.Open(req.CAFile)
			if err != nil {
				return fmt.Errorf("--ca: %w", err)
			}
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, maxCAFile))
			if err != nil {
				return fmt.Errorf("--ca: %w", err)
			}
			req.CA = string(b)
		}
		return nil
	},
	Do: func(_ context.Context, env *Env, _ *Task, req MirrorAdd) (*MirrorAdded, error) {
		m := store.Mirror{
			Name: req.Name, URL: strings.TrimRight(req.URL, "/"), User: req.User, CA: req.CA, TagTTL: req.TagTTL,
			Anonymous: req.Anonymous, DockerHub: req.DockerHub, Strict: req.Strict, Created: time.Now().UTC(),
		}
		if req.Password != "" {
			m.Password = []byte(req.Password)
		}
		if req.MaxSize != "" {
			n, err := ParseBytes(req.MaxSize)
			if err != nil {
				return nil, fmt.Errorf("--max-size: %w", err)
			}
			m.MaxBytes = n
		}
		switch err := env.Store.AddMirror(m); {
		case errors.Is(err, store.ErrMirrorExists):
			return nil, fmt.Errorf("mirror %s exists (berth mirror del %s first)", req.Name, req.Name)
		case err != nil:
			return nil, err
		}
		return &MirrorAdded{Name: m.Name, Host: m.Host()}, nil
	},
	Render: func(w Output, res *MirrorAdded) error {
		_, err := fmt.Fprintf(w.Out, "added mirror %s of %s: pull <registry>/%s/<repo>, or send ?ns=%s\n", res.Name, res.Host, res.Name, res.Host)
		return err
	},
})

// MirrorList lists the upstreams.
type MirrorList struct{}

// Mirrors is the result of mirror list. Passwords are left out.
type Mirrors struct {
	Mirrors []MirrorInfo `json:"mirrors"`
}

// MirrorInfo is one upstream as mirror list shows it.
type MirrorInfo struct {
	Name      string        `json:"name"`
	URL       string        `json:"url"`
	User      string        `json:"user,omitempty"`
	CA        bool          `json:"ca,omitempty"`
	TagTTL    time.Duration `json:"tag_ttl"`
	Anonymous bool          `json:"anonymous,omitempty"`
	DockerHub bool          `json:"docker_hub,omitempty"`
	Strict    bool          `json:"strict,omitempty"`
	MaxBytes  int64         `json:"max_bytes,omitempty"`
	Prefetch  []string      `json:"prefetch,omitempty"`
	Every     time.Duration `json:"prefetch_every,omitempty"`
}

var MirrorListOp = register(&Op[MirrorList, Mirrors]{
	Name: "mirror list",
	Do: func(_ context.Context, env *Env, _ *Task, _ MirrorList) (*Mirrors, error) {
		ms, err := env.Store.Mirrors()
		if err != nil {
			return nil, err
		}
		res := &Mirrors{Mirrors: []MirrorInfo{}}
		for _, m := range ms {
			res.Mirrors = append(res.Mirrors, MirrorInfo{Name: m.Name, URL: m.URL, User: m.User, CA: m.CA != "",
				TagTTL: m.TagTTL, Anonymous: m.Anonymous, DockerHub: m.DockerHub, Strict: m.Strict, MaxBytes: m.MaxBytes,
				Prefetch: m.Prefetch, Every: m.PrefetchEvery})
		}
		return res, nil
	},
	Render: func(w Output, res *Mirrors) error {
		tw := tabwriter.NewWriter(w.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tURL\tUSER\tTAG TTL\tMAX SIZE\tOPTIONS\tPREFETCH")
		for _, m := range res.Mirrors {
			var opts []string
			for _, o := range []struct {
				on   bool
				name string
			}{{m.Anonymous, "anonymous"}, {m.DockerHub, "docker-hub"}, {m.Strict, "strict"}, {m.CA, "ca"}} {
				if o.on {
					opts = append(opts, o.name)
				}
			}
			size := "-"
			if m.MaxBytes > 0 {
				size = HumanBytes(m.MaxBytes)
			}
			prefetch := "-"
			if len(m.Prefetch) > 0 {
				prefetch = strings.Join(m.Prefetch, ",") + " every " + m.Every.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.URL, orDash(m.User), m.TagTTL, size, orDash(strings.Join(opts, ",")), prefetch)
		}
		return tw.Flush()
	},
})

// MirrorSchedule sets the images the server prefetches into a mirror's
// cache, and how often; RunSchedules in package mirror runs it.
type MirrorSchedule struct {
	Name     string        `arg:"NAME" json:"name"`
	Prefetch []string      `flag:"prefetch" usage:"an image in the mirror's namespace, REPO[:TAG|@DIGEST] (repeatable, or comma-separated); none clears the schedule" json:"prefetch"`
	Every    time.Duration `flag:"every" usage:"how often the server prefetches them (at least 1s; a tenth of it is added as jitter)" json:"every"`
}

// MirrorScheduled is the result of mirror schedule.
type MirrorScheduled struct {
	Name     string        `json:"name"`
	Prefetch []string      `json:"prefetch"`
	Every    time.Duration `json:"every"`
}

// minPrefetchEvery keeps a schedule from hammering its upstream.
const minPrefetchEvery = time.Second

var MirrorScheduleOp = register(&Op[MirrorSchedule, MirrorScheduled]{
	Name:     "mirror schedule",
	Defaults: MirrorSchedule{Every: 6 * time.Hour},
	Do: func(_ context.Context, env *Env, _ *Task, req MirrorSchedule) (*MirrorScheduled, error) {
		var refs []string
		for _, r := range req.Prefetch {
			for _, one := range strings.Split(r, ",") {
				if one = strings.TrimSpace(one); one == "" {
					continue
				}
				if _, _, err := mirror.SplitImageRef(req.Name + "/" + one); err != nil {
					return nil, fmt.Errorf("--prefetch: %w", err)
				}
				refs = append(refs, one)
			}
		}
		if len(refs) > 0 && req.Every < minPrefetchEvery {
			return nil, fmt.Errorf("--every %s: want at least %s", req.Every, minPrefetchEvery)
		}
		if err := env.Store.SetMirrorPrefetch(req.Name, refs, req.Every); err != nil {
			return nil, mirrorError(req.Name, err)
		}
		res := &MirrorScheduled{Name: req.Name, Prefetch: refs, Every: req.Every}
		if len(refs) == 0 {
			res.Every = 0
		}
		return res, nil
	},
	Render: func(w Output, res *MirrorScheduled) error {
		if len(res.Prefetch) == 0 {
			_, err := fmt.Fprintf(w.Out, "mirror %s: no prefetch schedule\n", res.Name)
			return err
		}
		_, err := fmt.Fprintf(w.Out, "mirror %s: the server prefetches %s every %s\n", res.Name, strings.Join(res.Prefetch, ", "), res.Every)
		return err
	},
})

// MirrorDel forgets an upstream; its cached repositories stay.
type MirrorDel struct {
	Name string `arg:"NAME" json:"name"`
}

// MirrorDeleted is the result of mirror del.
type MirrorDeleted struct {
	Name string `json:"name"`
}

var MirrorDelOp = register(&Op[MirrorDel, MirrorDeleted]{
	Name: "mirror del",
	Do: func(_ context.Context, env *Env, _ *Task, req MirrorDel) (*MirrorDeleted, error) {
		if err := env.Store.DeleteMirror(req.Name); err != nil {
			return nil, mirrorError(req.Name, err)
		}
		return &MirrorDeleted{Name: req.Name}, nil
	},
	Render: func(w Output, res *MirrorDeleted) error {
		_, err := fmt.Fprintf(w.Out, "deleted mirror %s (its cached repositories stay: berth repo del removes them)\n", res.Name)
		return err
	},
})

// MirrorTest signs in to an upstream as a pull would.
type MirrorTest struct {
	Name string `arg:"NAME" json:"name"`
}

// MirrorTested is the result of mirror test.
type MirrorTested struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Status string `json:"status"`
}

var MirrorTestOp = register(&Op[MirrorTest, MirrorTested]{
	Name: "mirror test",
	Do: func(ctx context.Context, env *Env, _ *Task, req MirrorTest) (*MirrorTested, error) {
		m, err := env.Store.MirrorNamed(req.Name)
		if err != nil {
			return nil, mirrorError(req.Name, err)
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		status, err := mirror.Test(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("mirror %s: %w", req.Name, err)
		}
		return &MirrorTested{Name: m.Name, URL: m.URL, Status: status}, nil
	},
	Render: func(w Output, res *MirrorTested) error {
		_, err := fmt.Fprintf(w.Out, "mirror %s: %s answered %s\n", res.Name, res.URL, res.Status)
		return err
	},
})

// MirrorPrefetch fills the cache ahead of need.
type MirrorPrefetch struct {
	Refs []string `args:"REF" json:"refs"`
}

// Prefetched is the result of mirror prefetch, one line per reference.
type Prefetched struct {
	Refs []PrefetchedRef `json:"refs"`
}

// PrefetchedRef is one reference of mirror prefetch.
type PrefetchedRef struct {
	Ref string `json:"ref"`
	mirror.Fetched
}

var MirrorPrefetchOp = register(&Op[MirrorPrefetch, Prefetched]{
	Name: "mirror prefetch",
	Do: func(ctx context.Context, env *Env, _ *Task, req MirrorPrefetch) (*Prefetched, error) {
		if len(req.Refs) == 0 {
			return nil, errors.New("name at least one image: NAMESPACE/REPO:TAG or NAMESPACE/REPO@DIGEST")
		}
		m := mirror.New(env.Store, env.Logger)
		res := &Prefetched{}
		for _, s := range req.Refs {
			repo, ref, err := mirror.SplitImageRef(s)
			if err != nil {
				return res, err
			}
			got, err := m.Prefetch(ctx, repo, ref)
			if err != nil {
				return res, fmt.Errorf("prefetch %s: %w", s, err)
			}
			res.Refs = append(res.Refs, PrefetchedRef{Ref: s, Fetched: got})
		}
		return res, nil
	},
	Render: func(w Output, res *Prefetched) error {
		for _, r := range res.Refs {
			if _, err := fmt.Fprintf(w.Out, "%s: %d manifests, %d blobs, %s fetched\n", r.Ref, r.Manifests, r.Blobs, HumanBytes(r.Bytes)); err != nil {
				return err
			}
		}
		return nil
	},
})

func mirrorError(name string, err error) error {
	if errors.Is(err, store.ErrMirrorUnknown) {
		return fmt.Errorf("no mirror %s (see berth mirror list)", name)
	}
	return err
}
