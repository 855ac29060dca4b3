package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/compat-project/compat"
)

// DiffOptions configures Differential.
type DiffOptions struct {
	// Seed makes the command stream; the same seed gives the same stream.
	Seed uint64
	// Count is how many commands to send; default 10,000.
	Count int
	// Timeout bounds the whole check; default 2 minutes.
	Timeout time.Duration
	// Keys is the size of the key space the commands draw from; default
	// 16 (small, so that commands meet each other's keys and types).
	Keys int
	// Leave names commands to leave out of the stream, such as
	// "INCRBYFLOAT" (see KnownDivergences).
	Leave []string
}

// KnownDivergences are the commands whose replies differ between the
// native x86-64 build and redis-server.wasm by design, measured with
// Differential: INCRBYFLOAT and HINCRBYFLOAT compute in long double, the
// x87 80-bit format natively and IEEE binary128 in wasm32, so the last
// digits of their results differ ("5068.84799560603073809" natively,
// "5068.847995606030738" in wasm for the same inputs).
var KnownDivergences = []string{"INCRBYFLOAT", "HINCRBYFLOAT"}

// DiffReport is the outcome of Differential.
type DiffReport struct {
	// Seed is the seed the stream came from.
	Seed uint64
	// Commands counts the commands both servers answered alike (before a
	// divergence, if any).
	Commands int
	// Duration is how long the check ran.
	Duration time.Duration
	// Divergence is the first command the servers answered differently;
	// nil when they agreed on all of them.
	Divergence *Divergence
}

// Divergence is one command two servers answered differently.
type Divergence struct {
	// Index is the command's position in the stream, from 0.
	Index int
	// Command is the command and its arguments.
	Command []string
	// A and B are the two replies, normalised (see Differential).
	A, B string
}

func (d *Divergence) String() string {
	return fmt.Sprintf("command %d %q: %s vs %s", d.Index, strings.Join(d.Command, " "), d.A, d.B)
}

// Result turns the report into one compat result of unit "differential",
// test "differential: seed N": a pass when the servers agreed, a failure
// naming the first divergence otherwise.
func (r DiffReport) Result() compat.Result {
	id := fmt.Sprintf("differential: seed %d", r.Seed)
	res := compat.Result{Suite: Name, Unit: "differential", Test: id, Status: compat.Pass, Duration: r.Duration}
	if r.Divergence != nil {
		res.Status = compat.Fail
		res.Message = r.Divergence.String()
		res.Output = fmt.Sprintf("%d commands agreed before it\nA: %s\nB: %s\n", r.Commands, r.Divergence.A, r.Divergence.B)
	}
	return res
}

// Differential sends the same seeded random command stream to the servers
// at addrA and addrB, one command at a time to each, and compares the
// replies. It stops at the first divergence, after opts.Count commands or
// at opts.Timeout, whichever comes first; both servers' databases are
// flushed first. Replies whose order Redis does not define (SMEMBERS,
// HGETALL, KEYS...) are sorted before comparing; errors compare by text.
//
// The error says that a server could not be reached (a reply that is an
// error is a reply, not an error here).
func Differential(ctx context.Context, addrA, addrB string, opts DiffOptions) (report DiffReport, err error) {
	if opts.Count <= 0 {
		opts.Count = 10_000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.Keys <= 0 {
		opts.Keys = 16
	}
	report.Seed = opts.Seed
	start := time.Now()
	defer func() { report.Duration = time.Since(start) }()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	client := func(addr string) *goredis.Client {
		return goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, DisableIdentity: true,
			MaxRetries: -1, PoolSize: 1, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	}
	a, b := client(addrA), client(addrB)
	defer a.Close()
	defer b.Close()
	for _, c := range []*goredis.Client{a, b} {
		if err := c.FlushAll(ctx).Err(); err != nil {
			return report, fmt.Errorf("differential: FLUSHALL on %s: %w", c.Options().Addr, err)
		}
	}
	g := newGenerator(opts.Seed, opts.Keys)
	g.leave = map[string]bool{}
	for _, c := range opts.Leave {
		g.leave[strings.ToUpper(c)] = true
	}
	for i := 0; i < opts.Count && ctx.Err() == nil; i++ {
		cmd := g.next()
		ra, err := do(ctx, a, cmd)
		if err != nil {
			return report, fmt.Errorf("differential: command %d %q on %s: %w", i, strings.Join(cmd, " "), addrA, err)
		}
		rb, err := do(ctx, b, cmd)
		if err != nil {
			return report, fmt.Errorf("differential: command %d %q on %s: %w", i, strings.Join(cmd, " "), addrB, err)
		}
		if ra != rb {
			report.Divergence = &Divergence{Index: i, Command: cmd, A: ra, B: rb}
			return report, nil
		}
		report.Commands++
	}
	return report, nil
}

// do sends cmd and renders its reply as text, sorted where the order is
// not defined. Only a connection failure is an error.
func do(ctx context.Context, c *goredis.Client, cmd []string) (string, error) {
	args := make([]any, len(cmd))
	for i, s := range cmd {
		args[i] = s
	}
	v, err := c.Do(ctx, args...).Result()
	var rerr goredis.Error
	switch {
	case errors.Is(err, goredis.Nil):
		return "(nil)", nil
	case errors.As(err, &rerr):
		return "(error) " + rerr.Error(), nil
	case err != nil:
		return "", err
	}
	return render(v, unordered[strings.ToUpper(cmd[0])]), nil
}

// unordered names the commands whose array replies have no defined order.
var unordered = map[string]bool{"SMEMBERS": true, "HGETALL": true, "HKEYS": true, "HVALS": true,
	"KEYS": true, "SUNION": true, "SINTER": true, "SDIFF": true}

func render(v any, sorted bool) string {
	switch v := v.(type) {
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = render(e, false)
		}
		if sorted {
			sort.Strings(parts)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case string:
		return strconv.Quote(v)
	case nil:
		return "(nil)"
	default:
		return fmt.Sprint(v)
	}
}

// generator makes a deterministic stream of commands over a few keys of
// every type, values and numbers included, so that commands also meet
// keys of the wrong type.
type generator struct {
	r     *rand.Rand
	keys  int
	leave map[string]bool
}

func newGenerator(seed uint64, keys int) *generator {
	return &generator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), keys: keys}
}

func (g *generator) key() string { return "k" + strconv.Itoa(g.r.IntN(g.keys)) }

func (g *generator) val() string {
	switch g.r.IntN(6) {
	case 0:
		return strconv.Itoa(g.r.IntN(200) - 100)
	case 1:
		return strconv.FormatFloat(g.r.NormFloat64()*100, 'g', -1, 64)
	case 2:
		return ""
	case 3:
		return strings.Repeat("x", g.r.IntN(100))
	default:
		return "v" + strconv.Itoa(g.r.IntN(50))
	}
}

func (g *generator) num(lo, hi int) string { return strconv.Itoa(lo + g.r.IntN(hi-lo+1)) }

// templates are the commands the stream draws from; each fills in its
// own arguments.
var templates = []func(g *generator) []string{
	func(g *generator) []string { return []string{"SET", g.key(), g.val()} },
	func(g *generator) []string { return []string{"GET", g.key()} },
	func(g *generator) []string { return []string{"APPEND", g.key(), g.val()} },
	func(g *generator) []string { return []string{"INCR", g.key()} },
	func(g *generator) []string { return []string{"INCRBY", g.key(), g.num(-1000, 1000)} },
	func(g *generator) []string { return []string{"INCRBYFLOAT", g.key(), g.val()} },
	func(g *generator) []string { return []string{"STRLEN", g.key()} },
	func(g *generator) []string { return []string{"GETRANGE", g.key(), g.num(-5, 5), g.num(-5, 20)} },
	func(g *generator) []string { return []string{"SETRANGE", g.key(), g.num(0, 20), g.val()} },
	func(g *generator) []string { return []string{"MSET", g.key(), g.val(), g.key(), g.val()} },
	func(g *generator) []string { return []string{"MGET", g.key(), g.key(), g.key()} },
	func(g *generator) []string { return []string{"LPUSH", g.key(), g.val(), g.val()} },
	func(g *generator) []string { return []string{"RPUSH", g.key(), g.val()} },
	func(g *generator) []string { return []string{"LPOP", g.key()} },
	func(g *generator) []string { return []string{"RPOP", g.key(), g.num(1, 3)} },
	func(g *generator) []string { return []string{"LRANGE", g.key(), g.num(-5, 5), g.num(-5, 10)} },
	func(g *generator) []string { return []string{"LLEN", g.key()} },
	func(g *generator) []string { return []string{"LINDEX", g.key(), g.num(-3, 3)} },
	func(g *generator) []string { return []string{"LREM", g.key(), g.num(-2, 2), g.val()} },
	func(g *generator) []string { return []string{"SADD", g.key(), g.val(), g.val()} },
	func(g *generator) []string { return []string{"SREM", g.key(), g.val()} },
	func(g *generator) []string { return []string{"SMEMBERS", g.key()} },
	func(g *generator) []string { return []string{"SCARD", g.key()} },
	func(g *generator) []string { return []string{"SISMEMBER", g.key(), g.val()} },
	func(g *generator) []string { return []string{"SUNION", g.key(), g.key()} },
	func(g *generator) []string { return []string{"HSET", g.key(), g.val(), g.val()} },
	func(g *generator) []string { return []string{"HGET", g.key(), g.val()} },
	func(g *generator) []string { return []string{"HDEL", g.key(), g.val()} },
	func(g *generator) []string { return []string{"HGETALL", g.key()} },
	func(g *generator) []string { return []string{"HINCRBY", g.key(), g.val(), g.num(-50, 50)} },
	func(g *generator) []string { return []string{"HINCRBYFLOAT", g.key(), g.val(), g.val()} },
	func(g *generator) []string { return []string{"ZADD", g.key(), g.val(), g.val()} },
	func(g *generator) []string { return []string{"ZINCRBY", g.key(), g.num(-10, 10), g.val()} },
	func(g *generator) []string {
		return []string{"ZRANGE", g.key(), g.num(-5, 5), g.num(-5, 10), "WITHSCORES"}
	},
	func(g *generator) []string { return []string{"ZRANGEBYSCORE", g.key(), "-inf", g.val()} },
	func(g *generator) []string { return []string{"ZSCORE", g.key(), g.val()} },
	func(g *generator) []string { return []string{"ZREM", g.key(), g.val()} },
	func(g *generator) []string { return []string{"ZCARD", g.key()} },
	func(g *generator) []string { return []string{"SETBIT", g.key(), g.num(0, 100), g.num(0, 1)} },
	func(g *generator) []string { return []string{"BITCOUNT", g.key()} },
	func(g *generator) []string { return []string{"DEL", g.key()} },
	func(g *generator) []string { return []string{"EXISTS", g.key(), g.key()} },
	func(g *generator) []string { return []string{"TYPE", g.key()} },
	func(g *generator) []string { return []string{"RENAME", g.key(), g.key()} },
	func(g *generator) []string { return []string{"EXPIRE", g.key(), "100000"} },
	func(g *generator) []string { return []string{"PERSIST", g.key()} },
	func(g *generator) []string { return []string{"KEYS", "*"} },
	func(g *generator) []string { return []string{"DBSIZE"} },
	func(g *generator) []string {
		return []string{"EVAL", "return redis.call('get', KEYS[1])", "1", g.key()}
	},
	func(g *generator) []string {
		return []string{"EVAL", "return {redis.call('incr', KEYS[1]), ARGV[1]}", "1", g.key(), g.val()}
	},
	func(g *generator) []string { return []string{"EVAL", "error('boom')", "0"} },
	func(g *generator) []string {
		return []string{"EVAL", "return redis.pcall('lpush', KEYS[1], 'x')", "1", g.key()}
	},
	func(g *generator) []string { return []string{"OBJECT", "ENCODING", g.key()} },
}

// next returns the next command. DUMP is not among them: a set's or a
// hash's serialisation follows its hash table, whose order depends on a
// per-process random seed.
func (g *generator) next() []string {
	for {
		cmd := templates[g.r.IntN(len(templates))](g)
		if !g.leave[cmd[0]] {
			return cmd
		}
	}
}
