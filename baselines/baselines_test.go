package baselines

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/compat-project/compat"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Entry
		header  []string
		wantErr []string // substrings of the error, in order
	}{
		{
			name: "all expectations",
			in: "# python on the vkernel\n# second header line\n\n" +
				"pass  test_bool.BoolTest.test_and\n" +
				"fail  test_os.FileTests.test_blocking  # WASI: non-blocking mode on a regular file\n" +
				"skip  test_winreg  # no winreg on Linux\n" +
				"flaky test_time.T.test_monotonic  # host load, see issue #12\n",
			header: []string{"# python on the vkernel", "# second header line"},
			want: []Entry{
				{compat.ExpectPass, "test_bool.BoolTest.test_and", "", 4},
				{compat.ExpectFail, "test_os.FileTests.test_blocking", "WASI: non-blocking mode on a regular file", 5},
				{compat.ExpectFlaky, "test_time.T.test_monotonic", "host load, see issue #12", 7},
				{compat.ExpectSkip, "test_winreg", "no winreg on Linux", 6},
			},
		},
		{
			name: "ids with spaces, hashes and quotes",
			in: "pass unit/type/list: LPUSH, RPUSH - quicklist#2\n" +
				"fail   unit/other: a b   #   trailing spaces trimmed   \r\n" +
				"fail \"weird # id\\x01\"  # quoted\n" +
				"  # indented comment\n" +
				"pass \"quoted pass\"\n",
			want: []Entry{
				{compat.ExpectPass, "quoted pass", "", 5},
				{compat.ExpectFail, "unit/other: a b", "trailing spaces trimmed", 2},
				{compat.ExpectPass, "unit/type/list: LPUSH, RPUSH - quicklist#2", "", 1},
				{compat.ExpectFail, "weird # id\x01", "quoted", 3},
			},
		},
		{
			name: "pass may carry a note",
			in:   "pass test_x.A.test_b  # passes since 3.11.2\n",
			want: []Entry{{compat.ExpectPass, "test_x.A.test_b", "passes since 3.11.2", 1}},
		},
		{
			name:    "missing reason",
			in:      "pass test_a\nfail test_os.FileTests.test_blocking\n",
			wantErr: []string{"base.txt:2: fail test_os.FileTests.test_blocking has no reason"},
		},
		{
			name:    "empty reason",
			in:      "skip test_winreg  #   \n",
			wantErr: []string{"base.txt:1: skip test_winreg has no reason"},
		},
		{
			name:    "unknown expectation",
			in:      "\n\nerror test_a  # crashes\n",
			wantErr: []string{`base.txt:3: line starts with "error": want pass, fail, skip or flaky`},
		},
		{
			name:    "no test id",
			in:      "fail   # reason only\n",
			wantErr: []string{"base.txt:1: fail without a test id"},
		},
		{
			name:    "duplicate",
			in:      "pass test_a\npass test_b\nfail test_a  # x\n",
			wantErr: []string{"base.txt:3: test test_a is listed again (first on line 1)"},
		},
		{
			name:    "bad quoting",
			in:      "fail \"unterminated  # x\n",
			wantErr: []string{"base.txt:1: test id starts with '\"' but is not a valid Go string literal"},
		},
		{
			name:    "text after quoted id",
			in:      "fail \"id\" junk  # x\n",
			wantErr: []string{`base.txt:1: text "junk  # x" follows the quoted test id`},
		},
		{
			name:    "every bad line reported",
			in:      "fail a\nbogus b\npass c\nskip d\n",
			wantErr: []string{"base.txt:1:", "base.txt:2:", "base.txt:4:"},
		},
		{
			name:    "not utf-8",
			in:      "pass test_\xff\n",
			wantErr: []string{"base.txt:1: line is not valid UTF-8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse("base.txt", strings.NewReader(tt.in))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Parse succeeded with %d entries, want error %q", len(b.Entries), tt.wantErr)
				}
				msg := err.Error()
				for _, w := range tt.wantErr {
					i := strings.Index(msg, w)
					if i < 0 {
						t.Fatalf("error %q does not contain %q", err, w)
					}
					msg = msg[i+len(w):]
				}
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Errorf("error %v is not a *ParseError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(b.Entries, tt.want) {
				t.Errorf("entries:\n got %+v\nwant %+v", b.Entries, tt.want)
			}
			if !reflect.DeepEqual(b.Header, tt.header) {
				t.Errorf("header = %q, want %q", b.Header, tt.header)
			}
		})
	}
}

func TestWriteRoundTrip(t *testing.T) {
	b := &Baseline{
		Header: []string{"# header", "no hash"},
		Entries: []Entry{
			{Expect: compat.ExpectFail, Test: "test_os.FileTests.test_blocking", Reason: "WASI:\nnon-blocking\x01 mode"},
			{Expect: compat.ExpectPass, Test: "test_bool.BoolTest.test_and"},
			{Expect: compat.ExpectFlaky, Test: "unit/x: a #1 b", Reason: "load"},
			{Expect: compat.ExpectSkip, Test: " leading space", Reason: "odd"},
			{Expect: compat.ExpectPass, Test: "\"quoted\""},
		},
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	want := "# header\n" +
		"# no hash\n" +
		"skip  \" leading space\"  # odd\n" +
		"pass  \"\\\"quoted\\\"\"\n" +
		"pass  test_bool.BoolTest.test_and\n" +
		"fail  test_os.FileTests.test_blocking  # WASI: non-blocking mode\n" +
		"flaky \"unit/x: a #1 b\"  # load\n"
	if buf.String() != want {
		t.Fatalf("WriteTo wrote:\n%s\nwant:\n%s", buf.String(), want)
	}
	again, err := Parse("again", strings.NewReader(buf.String()))
	if err != nil {
		t.Fatalf("parsing what WriteTo wrote: %v", err)
	}
	var out bytes.Buffer
	again.WriteTo(&out)
	if out.String() != want {
		t.Errorf("second round trip changed the file:\n%s", out.String())
	}
}

func TestLoadAndSave(t *testing.T) {
	dir := t.TempDir()
	path := File(dir, "python", "vkernel")
	if filepath.Base(path) != "python-vkernel.txt" {
		t.Errorf("File = %s, want .../python-vkernel.txt", path)
	}
	if _, err := Load(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing file: err = %v, want fs.ErrNotExist", err)
	}
	if err := os.WriteFile(path, []byte("pass a\nfail b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path+":2: fail b has no reason") {
		t.Fatalf("Load of a broken file: err = %v, want it to name %s:2", err, path)
	}
	b := &Baseline{Entries: []Entry{{Expect: compat.ExpectSkip, Test: "z", Reason: "r"}, {Expect: compat.ExpectPass, Test: "a"}}}
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "pass  a\nskip  z  # r\n" {
		t.Errorf("saved file = %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) != 0 {
		t.Errorf("Save left temporary files: %v", left)
	}
}
