package integration

// A real OpenLDAP server for the LDAP sign-in tests: Debian's slapd started
// on a free loopback port with a generated slapd.conf (mdb database, with
// or without the memberof overlay) in a temp dir, loaded with ldapadd.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/fixtures"
)

const (
	ldapSuffix   = "dc=example,dc=org"
	ldapRootDN   = "cn=admin,dc=example,dc=org"
	ldapRootPW   = "root-secret-pw"
	ldapPeople   = "ou=people,dc=example,dc=org"
	ldapGroupsOU = "ou=groups,dc=example,dc=org"
)

// slapdServer is one running slapd.
type slapdServer struct {
	URL  string
	addr string
	cmd  *exec.Cmd
	log  bytes.Buffer
}

// ldapData is the directory of the tests: users alice, bob and carol (each
// with the password "<name>-ldap-pw"), groups dev (alice) and ops (bob).
const ldapData = `dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
userPassword: alice-ldap-pw

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
userPassword: bob-ldap-pw

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: C
userPassword: carol-ldap-pw

dn: cn=dev,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: dev
member: uid=alice,ou=people,dc=example,dc=org

dn: cn=ops,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: ops
member: uid=bob,ou=people,dc=example,dc=org
`

// startSlapd starts slapd with the test directory loaded; memberOf says
// whether the memberof overlay maintains users' memberOf attribute. The
// server is stopped when the test ends.
func startSlapd(t *testing.T, memberOf bool) *slapdServer {
	t.Helper()
	slapd := "/usr/sbin/slapd"
	if _, err := os.Stat(slapd); err != nil {
		slapd = fixtures.RequireTool(t, "slapd")
	}
	fixtures.RequireTool(t, "ldapadd")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	overlay := ""
	if memberOf {
		overlay = "moduleload memberof\n"
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
%spidfile %s/slapd.pid
database mdb
maxsize 16777216
suffix "%s"
rootdn "%s"
rootpw %s
directory %s/db
`, overlay, dir, ldapSuffix, ldapRootDN, ldapRootPW, dir)
	if memberOf {
		conf += "overlay memberof\nmemberof-group-oc groupOfNames\nmemberof-member-ad member\nmemberof-memberof-ad memberOf\nmemberof-refint true\n"
	}
	confPath := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &slapdServer{addr: freeAddr(t)}
	s.URL = "ldap://" + s.addr
	s.cmd = exec.Command(slapd, "-f", confPath, "-h", s.URL+"/", "-d", "0")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	t.Cleanup(s.stop)
	s.waitReady(t)
	s.ldapadd(t, ldapData)
	return s
}

// waitReady polls until slapd accepts connections, for at most 10 s.
func (s *slapdServer) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		if s.cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("slapd did not listen on %s within 10s; its output:\n%s", s.addr, s.log.String())
}

// ldapadd loads LDIF as the root DN.
func (s *slapdServer) ldapadd(t *testing.T, ldif string) {
	t.Helper()
	s.ldapTool(t, "ldapadd", ldif)
}

// ldapdelete deletes the entries named one a line.
func (s *slapdServer) ldapdelete(t *testing.T, dns ...string) {
	t.Helper()
	s.ldapTool(t, "ldapdelete", strings.Join(dns, "\n")+"\n")
}

func (s *slapdServer) ldapTool(t *testing.T, tool, input string) {
	t.Helper()
	cmd := exec.Command(tool, "-x", "-H", s.URL, "-D", ldapRootDN, "-w", ldapRootPW)
	cmd.Stdin = strings.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
}

// stop ends slapd and waits for it; safe to call twice.
func (s *slapdServer) stop() {
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// ldapSet configures the registry's LDAP sign-in against s.
func (reg *server) ldapSet(t *testing.T, s *slapdServer, extra ...string) {
	t.Helper()
	args := append([]string{"ldap", "set", "--url", s.URL, "--bind-dn", ldapRootDN, "--bind-password-stdin",
		"--base-dn", ldapSuffix, "--user-filter", "(&(objectClass=inetOrgPerson)(uid=%s))"}, extra...)
	reg.berth(t, ldapRootPW+"\n", args...)
}
