package events

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/store"
)

// EnvelopeMediaType is the Content-Type of registry:2's notification
// envelope, which existing consumers of registry:2 webhooks expect.
const EnvelopeMediaType = "application/vnd.docker.distribution.events.v2+json"

// Envelope is registry:2's notification body: a list of events. berth
// sends up to Options.BatchSize queued events of one endpoint per envelope,
// in outbox order.
type Envelope struct {
	Events []Record `json:"events"`
}

// Record is one event in registry:2's JSON shape (distribution's
// notifications.Event); field names and nesting follow it exactly.
type Record struct {
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Action    string    `json:"action"`
	Target    Target    `json:"target"`
	Request   Request   `json:"request"`
	Actor     Actor     `json:"actor"`
	Source    Source    `json:"source"`
}

// Target is what the event is about.
type Target struct {
	MediaType  string `json:"mediaType,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Size       int64  `json:"size,omitempty"`
	Length     int64  `json:"length,omitempty"`
	Repository string `json:"repository"`
	URL        string `json:"url,omitempty"`
	Tag        string `json:"tag,omitempty"`
}

// Request is the HTTP request that made the change.
type Request struct {
	ID        string `json:"id,omitempty"`
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host,omitempty"`
	Method    string `json:"method,omitempty"`
	UserAgent string `json:"useragent,omitempty"`
}

// Actor is who made the change: the signed-in account, empty for
// anonymous and for admin commands.
type Actor struct {
	Name string `json:"name,omitempty"`
}

// Source is the registry instance that recorded the event.
type Source struct {
	Addr       string `json:"addr,omitempty"`
	InstanceID string `json:"instanceID,omitempty"`
}

// NewRecord converts a stored event to registry:2's shape.
func NewRecord(ev store.Event, src Source) Record {
	r := Record{
		ID: ev.ID, Timestamp: ev.Time.UTC(), Action: ev.Action,
		Target: Target{
			MediaType: ev.MediaType, Digest: string(ev.Digest), Size: ev.Size, Length: ev.Size,
			Repository: ev.Repo, Tag: ev.Tag,
		},
		Request: Request{
			ID: ev.Origin.RequestID, Addr: ev.Origin.Addr, Host: ev.Origin.Host,
			Method: ev.Origin.Method, UserAgent: ev.Origin.UserAgent,
		},
		Actor:  Actor{Name: ev.Origin.Actor},
		Source: src,
	}
	if ev.Origin.BaseURL != "" && ev.Digest != "" {
		r.Target.URL = ev.Origin.BaseURL + "/v2/" + ev.Repo + "/manifests/" + string(ev.Digest)
	}
	return r
}

// CloudEventType is the CloudEvents "type" of an action.
func CloudEventType(action string) string { return "io.berth.registry." + action }

// newRequest builds the POST of evs to w in w's format, signed with its
// secret at time now. A registry:2 envelope carries all of evs, in order;
// CloudEvents binary mode carries exactly one event. Bodies are bounded
// (BatchSize small events), so they are built whole.
func newRequest(ctx context.Context, w *store.Webhook, evs []store.Event, src Source, now time.Time) (*http.Request, error) {
	if len(evs) == 0 || w.Format == store.FormatCloudEvents && len(evs) != 1 {
		return nil, fmt.Errorf("webhook %s: %d events for one %s request", w.Name, len(evs), w.Format)
	}
	body, err := encodeBody(w.Format, evs, src)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", w.Name, err)
	}
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", EnvelopeMediaType)
	req.Header.Set("User-Agent", "berth-webhook")
	if w.Format == store.FormatCloudEvents {
		setCloudEventHeaders(req.Header, evs[0], src)
	}
	id := batchID(evs)
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.Secret, id, ts, body))
	return req, nil
}

// encodeBody is the request body of evs in format f.
func encodeBody(f string, evs []store.Event, src Source) ([]byte, error) {
	recs := make([]Record, len(evs))
	for i, ev := range evs {
		recs[i] = NewRecord(ev, src)
	}
	var body []byte
	var err error
	if f == store.FormatCloudEvents {
		// Binary content mode: the attributes are ce-* headers and the body
		// is the event's data alone.
		// https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md#31-binary-content-mode
		body, err = json.Marshal(recs[0])
	} else {
		body, err = json.Marshal(Envelope{Events: recs})
	}
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", evs[0].ID, err)
	}
	return body, nil
}

// batchID is the HeaderID value of a request carrying evs: their ids in
// order, joined by commas (one id for one event).
func batchID(evs []store.Event) string {
	var b strings.Builder
	b.Grow(len(evs) * (len(evs[0].ID) + 1))
	for i, ev := range evs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(ev.ID)
	}
	return b.String()
}

// setCloudEventHeaders sets the ce-* attributes of ev and the data's
// content type.
func setCloudEventHeaders(h http.Header, ev store.Event, src Source) {
	subject := ev.Repo
	if ev.Tag != "" {
		subject += ":" + ev.Tag
	} else if ev.Digest != "" {
		subject += "@" + string(ev.Digest)
	}
	h.Set("Content-Type", "application/json")
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", ev.ID)
	h.Set("ce-source", cloudEventSource(src))
	h.Set("ce-type", CloudEventType(ev.Action))
	h.Set("ce-time", ev.Time.UTC().Format(time.RFC3339Nano))
	h.Set("ce-subject", subject)
}

// cloudEventSource is a URI-reference naming this registry.
func cloudEventSource(src Source) string {
	if src.Addr == "" {
		return "/berth"
	}
	return (&url.URL{Scheme: "berth", Host: src.Addr}).String()
}
