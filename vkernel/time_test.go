package vkernel

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

const zoneinfo = "/usr/share/zoneinfo"

// TestPosixLocalTime runs the tz guest (vkernel/guests/src/tz.c), linked
// with vkposix by both compilers, with the host's time zone files mounted
// read-only where the python suite mounts them, and the same program built
// natively against the host's glibc with the same arguments: tzset's
// tzname, timezone and daylight, localtime_r, strftime's %Z and %z, and
// mktime (round trips, gaps, folds, isdst hints) must come out the same,
// line for line, for TZif zones around every transition from 1900 to 2100
// (the table, the times before it and the footer rule past it), POSIX TZ
// strings with M, J and n rules, and what glibc does with TZ empty,
// invalid, ":"-prefixed, an absolute path or unset.
func TestPosixLocalTime(t *testing.T) {
	if _, err := os.Stat(filepath.Join(zoneinfo, "America", "New_York")); err != nil {
		testenv.Missing(t, "no time zone files (apt-get install tzdata): %v", err)
	}
	native, err := guests.NativeC("tz.c")
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "cannot build the native tz program: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	etc := t.TempDir()
	london, err := os.ReadFile(filepath.Join(zoneinfo, "Europe", "London"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "localtime"), london, 0o644); err != nil {
		t.Fatal(err)
	}
	zi := []Mount{{Guest: zoneinfo, Host: zoneinfo, ReadOnly: true}}
	// Every zone of zone.tab: tzset's variables and a few instants, one
	// past the table (the footer's rule).
	tab, err := os.ReadFile(filepath.Join(zoneinfo, "zone.tab"))
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, line := range strings.Split(string(tab), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && !strings.HasPrefix(line, "#") {
			all = append(all, "TZ="+f[2], "at=-2000000000", "at=1000000000", "at=1720000000", "at=2500000000")
		}
	}
	cases := []struct {
		name string
		args []string
		// nativeArgs, when set, are the native program's arguments (the
		// guest's TZ- means /etc/localtime, which natively is the host's).
		nativeArgs []string
		mounts     []Mount
		env        []string
	}{
		{name: "new_york", args: []string{"TZ=America/New_York", "scan=1880,2100",
			"mk=2024,3,10,2,30,0,-1", "mk=2024,13,40,2,30,0,-1", "mk=2024,1,10,2,30,0,1", "mk=2024,7,10,2,30,0,0",
			"mk=1700,7,10,2,30,0,0", "mk=2200,7,10,2,30,0,0", "mk=2024,3,0,-1,-1,-1,-1", "at=-9000000000"}},
		{name: "london", args: []string{"TZ=Europe/London", "scan=1880,2100"}},
		{name: "lord_howe", args: []string{"TZ=Australia/Lord_Howe", "scan=1880,2100"}},
		{name: "kolkata", args: []string{"TZ=Asia/Kolkata", "scan=1850,2100",
			"mk=2024,1,10,2,30,0,1", "mk=1944,1,10,2,30,0,0", "mk=1944,1,10,2,30,0,1"}},
		{name: "tehran", args: []string{"TZ=Asia/Tehran", "scan=1900,2100"}},
		{name: "minsk_kyiv", args: []string{"TZ=Europe/Minsk", "scan=1900,2050", "mk=2012,3,12,1,1,0,1",
			"TZ=Europe/Kyiv", "at=441763200", "at=757382400"}},
		{name: "posix", args: []string{
			"TZ=EST+05EDT,M3.2.0,M11.1.0", "scan=1960,2040",
			"TZ=AEST-10AEDT-11,M10.5.0,M3.5.0", "scan=1965,1975", "scan=2000,2010", "at=1044144000", "at=1059912000",
			"TZ=UTC+0", "at=1044144000", "TZ=EST+5EDT,M4.1.0,M10.5.0", "at=1044144000",
			"TZ=UTC0", "at=0",
			"TZ=<+03>-3", "at=0", "mk=2024,1,1,0,0,0,-1", "mk=2024,1,1,0,0,0,1",
			"TZ=ABC+1XYZ,J60,300/-2", "scan=2000,2006",
			"TZ=<-04>4<-03>,J60/167,M11.1.0/-1:30", "scan=2020,2026",
			"TZ=<+0530>-5:30<+0630>-6:30:15,M4.5.6/23:59:59,M9.1.1", "scan=2022,2026",
			"TZ=EST5", "at=0", "TZ=EST+5EDT", "at=1000000000",
		}},
		{name: "odd", args: []string{
			"TZ=Foo/Bar", "at=0", "TZ=x", "at=0", "TZ=Foo", "at=0", "TZ=Foo5", "at=0", "TZ=", "at=0",
			"TZ=:UTC", "at=0", "TZ=:America/New_York", "at=1700000000", "TZ=EST5EDT", "at=1700000000",
			"TZ=Asia/Nowhere", "at=0", "TZ=America", "at=0", "TZ=" + zoneinfo + "/Asia/Tokyo", "at=0",
			"TZ=Universal", "at=0",
		}},
		{name: "all", args: all},
		{name: "tzdir", args: []string{"TZ=Europe/Berlin", "at=1700000000", "at=1690000000"},
			mounts: []Mount{{Guest: "/zi", Host: zoneinfo, ReadOnly: true}}, env: []string{"TZDIR=/zi"}},
		// No /etc/localtime in the guest: UTC, as glibc without one.
		{name: "unset", args: []string{"TZ-", "at=0", "at=1700000000"}, nativeArgs: []string{"TZ=", "at=0", "at=1700000000"}},
		{name: "unset_localtime", args: []string{"TZ-", "scan=2000,2030"},
			nativeArgs: []string{"TZ=" + filepath.Join(etc, "localtime"), "scan=2000,2030"},
			mounts:     []Mount{{Guest: "/etc", Host: etc, ReadOnly: true}}},
	}
	for _, cc := range compilers {
		t.Run(cc, func(t *testing.T) {
			wasm := guest(t, func() ([]byte, error) { return guests.CPosix("tz.c", cc) })
			f := newFixture(t, entry("tz", wasm, megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}}))
			k, _ := f.open(t, Options{})
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					mounts := append(append([]Mount{}, zi...), c.mounts...)
					got, res := run(t, k, Request{Path: f.wasm("tz"), Args: append([]string{"tz"}, c.args...),
						Mounts: mounts, Env: c.env})
					if res.ExitCode != 0 {
						t.Fatalf("tz %v: exit %d, output:\n%s", c.args, res.ExitCode, got)
					}
					nargs := c.args
					if c.nativeArgs != nil {
						nargs = c.nativeArgs
					}
					cmd := exec.Command(native, nargs...)
					cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, c.env...)
					if c.env != nil {
						// The native program finds the files at their host path.
						cmd.Env = append(cmd.Env[:1], "TZDIR="+zoneinfo)
					}
					want, err := cmd.Output()
					if err != nil {
						t.Fatalf("native tz %v: %v", nargs, err)
					}
					compareLines(t, c.args, nargs, got, string(want))
				})
			}
		})
	}
}

// compareLines fails for each line of the guest's output that differs from
// the native one's (at most 20 shown). The first line of each "tz" record
// names the TZ argument, which may differ where the native run was given
// another spelling of the same zone.
func compareLines(t *testing.T, args, nargs []string, got, want string) {
	t.Helper()
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	if len(g) != len(w) {
		t.Errorf("tz %v: %d lines, native %v: %d", args, len(g), nargs, len(w))
	}
	shown := 0
	for i := 0; i < len(g) && i < len(w) && shown < 20; i++ {
		gl, wl := g[i], w[i]
		if strings.HasPrefix(gl, "tz ") && strings.HasPrefix(wl, "tz ") {
			_, gl, _ = strings.Cut(gl, " tzname=")
			_, wl, _ = strings.Cut(wl, " tzname=")
		}
		if gl != wl {
			t.Errorf("line %d:\n guest:  %s\n native: %s", i+1, g[i], w[i])
			shown++
		}
	}
	if shown == 0 && len(g) != len(w) {
		n := min(len(g), len(w))
		t.Errorf("first extra line: guest %q native %q", strings.Join(g[n:min(len(g), n+1)], ""),
			strings.Join(w[n:min(len(w), n+1)], ""))
	}
	t.Logf("%d lines compared", len(g))
}
