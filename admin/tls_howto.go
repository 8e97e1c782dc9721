package admin

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// writeTLSHowTo prints what tls init wrote and, for the first host and
// the port clients use, exactly where each kind of client looks for the
// CA: Docker, the containers/image tools (Podman, Buildah, Skopeo, CRI-O),
// containerd, and the operating system's store.
func writeTLSHowTo(w io.Writer, res *TLSResult) error {
	host := res.Hosts[0]
	// Docker and containerd name the directory host:port, without the port
	// when it is 443; an IPv6 address goes in brackets.
	hostPort := net.JoinHostPort(host, res.Port)
	if res.Port == "443" {
		hostPort = host
		if strings.Contains(host, ":") {
			hostPort = "[" + host + "]"
		}
	}
	caState := "new: every client must trust it, as shown below"
	if !res.NewCA {
		caState = "kept: clients that trust it need nothing new"
	}
	return tlsHowTo.Execute(w, map[string]any{
		"Dir":        res.Dir,
		"Serve":      DataCommand(filepath.Dir(res.Dir), "serve --tls"),
		"CAName":     res.CAName,
		"CAState":    caState,
		"CAUntil":    day(res.CANotAfter),
		"Names":      strings.Join(res.Hosts, ", "),
		"Until":      day(res.NotAfter),
		"CA":         filepath.Join(res.Dir, caCertFile),
		"HostPort":   hostPort,
		"Port":       res.Port,
		"AnchorName": "berth-" + strings.NewReplacer(":", "-", "*", "wildcard").Replace(host) + ".crt",
	})
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

var tlsHowTo = template.Must(template.New("howto").Parse(`Wrote {{.Dir}}:
  ca.crt, ca.key          {{.CAName}}, valid until {{.CAUntil}} ({{.CAState}})
  server.crt, server.key  for {{.Names}}, valid until {{.Until}}
ca.key and server.key are private (mode 0600); only ca.crt goes to clients.

Serve with them:  {{.Serve}}
A server already running with --tls loads them on SIGHUP (kill -HUP <pid>,
or systemctl reload berth), without dropping connections.

Copy {{.CA}} to every machine that pushes or pulls
(scp works), then run there, as root, the lines for its client. They are shown
for {{.HostPort}}; repeat them for every name clients use{{if ne .Port "443"}}, with :{{.Port}}{{end}}.

Docker (read at every connection, no restart needed):
  mkdir -p /etc/docker/certs.d/{{.HostPort}}
  cp ca.crt /etc/docker/certs.d/{{.HostPort}}/ca.crt

Podman, Buildah, Skopeo, CRI-O:
  mkdir -p /etc/containers/certs.d/{{.HostPort}}
  cp ca.crt /etc/containers/certs.d/{{.HostPort}}/ca.crt

containerd (nerdctl, Kubernetes nodes), with config_path = "/etc/containerd/certs.d"
in the registry section of /etc/containerd/config.toml:
  mkdir -p /etc/containerd/certs.d/{{.HostPort}}
  cp ca.crt /etc/containerd/certs.d/{{.HostPort}}/ca.crt
and write /etc/containerd/certs.d/{{.HostPort}}/hosts.toml:
  server = "https://{{.HostPort}}"
  [host."https://{{.HostPort}}"]
    capabilities = ["pull", "resolve", "push"]
    ca = "/etc/containerd/certs.d/{{.HostPort}}/ca.crt"

The operating system's store (curl, browsers, Go programs such as crane):
  Debian, Ubuntu:      cp ca.crt /usr/local/share/ca-certificates/{{.AnchorName}} && update-ca-certificates
  RHEL, Fedora, Alma:  cp ca.crt /etc/pki/ca-trust/source/anchors/{{.AnchorName}} && update-ca-trust
`))
