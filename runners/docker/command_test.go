package docker

import (
	"strings"
	"testing"

	"github.com/compat-project/compat/runners"
)

// TestCommand: the command runs the process in a fresh container of the
// image with the target's mounts, environment and network.
func TestCommand(t *testing.T) {
	tg := &Target{opts: Options{Image: "compat/x:1", HostNetwork: true, Workdir: "/w", Env: []string{"A=1"},
		Mounts: []runners.Mount{{Host: "/h", Guest: "/g"}, {Host: "/r o", Guest: "/ro", ReadOnly: true}}}}
	got := tg.Command(runners.Process{Args: []string{"python3.11", "-m", "test", "test_x"}, Env: []string{"B=2"}, Stdin: strings.NewReader("")})
	want := "docker run --rm -i --network host -v /h:/g -v '/r o:/ro:ro' -e A=1 -e B=2 -w /w compat/x:1 python3.11 -m test test_x"
	if got != want {
		t.Errorf("Command =\n %s\nwant\n %s", got, want)
	}
	if got := tg.Command(runners.Process{Args: []string{"ls"}, Dir: "/d"}); !strings.Contains(got, " -w /d compat/x:1 ls") {
		t.Errorf("Dir: %s", got)
	}
}
