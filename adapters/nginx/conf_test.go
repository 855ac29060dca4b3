package nginx

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadServerConf(t *testing.T) {
	conf := `
# Test::Nginx writes configurations like this one
worker_processes  1;
daemon off;   # a comment; with "quotes" {and braces}
master_process off;
pid       /tmp/servroot/logs/nginx.pid;
http {
    server {
        listen          1984;
        server_name     'localhost';
        location /a { echo "listen 9999;"; set $x "${arg_y}z"; }
        location ~ ^/b#c { return 200 'x;y'; }
    }
    server { listen 127.0.0.1:1985 default_server; listen [::1]:1986; listen unix:/tmp/s.sock; }
    server { listen localhost:1984; listen *:1987; }
}
`
	sc, err := readServerConf(conf, "pid logs/other.pid; daemon on;", "")
	if err != nil {
		t.Fatal(err)
	}
	want := &serverConf{
		Daemon: true, // -g comes after the file
		Pid:    "logs/other.pid",
		PidIn:  pidInGlobals,
		Listen: []string{"127.0.0.1:1984", "127.0.0.1:1985", "[::1]:1986", "127.0.0.1:1987"},
	}
	if !reflect.DeepEqual(sc, want) {
		t.Errorf("readServerConf = %+v, want %+v", sc, want)
	}
	if sc, _ := readServerConf("events {}", "", ""); !sc.Daemon || sc.Pid != "" || len(sc.Listen) != 0 {
		t.Errorf("defaults: %+v, want daemon on, no pid, no listeners", sc)
	}
}

func TestReadServerConfErrors(t *testing.T) {
	for conf, want := range map[string]string{
		"http { server { listen 10.1.2.3:80; } }": "only loopback",
		"http { server { listen 1984; }":          "not closed",
		"daemon off":                              `"daemon" has no ";"`,
		"}":                                       `unexpected "}"`,
		`return 200 "x;`:                          "unterminated",
		"listen 127.0.0.1:99999;":                 "bad port",
	} {
		_, err := readServerConf(conf, "", "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("readServerConf(%q) = %v, want an error with %q", conf, err, want)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	c, err := parseCmdline([]string{"-p", "/srv/t", "-c", "conf/nginx.conf", "-e", "error.log", "-g", "pid x.pid;"})
	if err != nil {
		t.Fatal(err)
	}
	if c.prefix != "/srv/t/" || c.conf != "/srv/t/conf/nginx.conf" || c.globals != "pid x.pid;" || c.info {
		t.Errorf("parseCmdline = %+v", c)
	}
	c, err = parseCmdline([]string{"-p/srv/", "-c/etc/n.conf", "-qt"})
	if err != nil || c.prefix != "/srv/" || c.conf != "/etc/n.conf" || !c.info {
		t.Errorf("joined forms: %+v, %v", c, err)
	}
	if _, err := parseCmdline([]string{"-x"}); err == nil {
		t.Error("-x: no error")
	}
	if _, err := parseCmdline([]string{"-c"}); err == nil || !strings.Contains(err.Error(), "requires file name") {
		t.Errorf("-c without a value: %v", err)
	}
}

// TestScanServerConf: a configuration with Lua blocks, which parseConf
// cannot read, still yields its listen addresses.
func TestScanServerConf(t *testing.T) {
	conf := `daemon off;
http {
    server {
        listen 1984;
        location = /back {
            content_by_lua_block {
                ngx.say("Cache-Control: ", ngx.var.x)
            }
        }
        location = /t { proxy_pass http://127.0.0.1:1984/back; }
    }
    server { listen 127.0.0.1:1985; }
}
`
	if _, err := readServerConf(conf, "", ""); err == nil {
		t.Skip("parseConf reads this configuration: nothing to fall back from")
	}
	sc := scanServerConf(conf, "pid logs/x.pid;")
	want := &serverConf{Daemon: false, Pid: "logs/x.pid", PidIn: pidInGlobals, Listen: []string{"127.0.0.1:1984", "127.0.0.1:1985"}}
	if !reflect.DeepEqual(sc, want) {
		t.Errorf("scanServerConf = %+v, want %+v", sc, want)
	}
}

// TestReadServerConfIncludes follows include directives, relative to the
// configuration's directory and with glob patterns, as Debian's
// nginx.conf includes sites-enabled/*.
func TestReadServerConfIncludes(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sites-enabled"), 0o755)
	os.WriteFile(filepath.Join(dir, "sites-enabled", "a"), []byte("server { listen 8081; }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sites-enabled", "b"), []byte("server { listen [::]:8082; include loop.conf; }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "loop.conf"), []byte("listen 8083;\n"), 0o644)
	sc, err := readServerConf("pid /run/x.pid;\nhttp { include sites-enabled/*; }\n", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1:8081", "[::1]:8082", "127.0.0.1:8083"}; !reflect.DeepEqual(sc.Listen, want) || sc.Pid != "/run/x.pid" {
		t.Fatalf("listen %q pid %q, want %q and /run/x.pid", sc.Listen, sc.Pid, want)
	}
	os.WriteFile(filepath.Join(dir, "self.conf"), []byte("include self.conf;\n"), 0o644)
	if _, err := readServerConf("include self.conf;", "", dir); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Fatalf("a self-including file: %v, want an error about nesting", err)
	}
}

// TestReadServerConfStreamMail: the "listen" directives of stream and mail
// servers get listeners as http ones do, and UDP ones ("listen ... udp")
// get none, in both readers: the vkernel has no UDP sockets, and nginx.wasm
// refuses them itself.
func TestReadServerConfStreamMail(t *testing.T) {
	conf := `
events {}
stream {
    server { listen 127.0.0.1:8081; proxy_pass 127.0.0.1:8090; }
    server { listen 127.0.0.1:8082 udp; listen 127.0.0.1:8083 udp reuseport; proxy_pass 127.0.0.1:8091; }
}
mail {
    server { listen 127.0.0.1:8025; protocol smtp; }
}
`
	want := []string{"127.0.0.1:8081", "127.0.0.1:8025"}
	sc, err := readServerConf(conf, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sc.Listen, want) {
		t.Errorf("readServerConf: listeners %q, want %q", sc.Listen, want)
	}
	if got := scanServerConf(conf, "").Listen; !reflect.DeepEqual(got, want) {
		t.Errorf("scanServerConf: listeners %q, want %q", got, want)
	}
}
