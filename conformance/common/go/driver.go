// Package conformance holds what the Go conformance drivers (conformance/franz-go, conformance/sarama) share:
// the command line and exit codes of the driver contract (conformance/README.md), the messages of
// conformance/common/messages.md and their checks. It reimplements conformance/common/messages.py,
// driver.py and groups.py.
package conformance

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Scenarios are the scenario names of the driver contract, in the contract's order.
var Scenarios = []string{
	"roundtrip",
	"compression-gzip",
	"compression-snappy",
	"compression-lz4",
	"compression-zstd",
	"message-too-large",
	"offset-out-of-range",
	"list-offsets",
	"admin-topics",
	"idempotent-produce",
	"consumer-group",
	"consumer-group-kip848",
	"admin-configs-partitions-records",
	"log-compaction",
	"cluster",
	"produce",
	"verify",
}

const (
	// OverallTimeout bounds the whole driver run so that a misbehaving broker can never hang the caller.
	OverallTimeout = 120 * time.Second
	// CallTimeout bounds any single client call (produce, metadata, admin request, offset lookup).
	CallTimeout = 30 * time.Second

	exitPass         = 0
	exitFail         = 1
	exitNotSupported = 2
)

// Args are one driver run's arguments.
type Args struct {
	Bootstrap string
	Scenario  string
	Topic     string
	Count     int64
	Seed      int64
}

// failure is a scenario failure: the client or broker did not behave as the scenario requires (exit 1).
type failure struct{ reason string }

func (f *failure) Error() string { return f.reason }

// Failf reports a scenario failure.
func Failf(format string, args ...any) error {
	return &failure{fmt.Sprintf(format, args...)}
}

// notSupported means this client cannot express the scenario (exit 2, "n/a" in the matrix).
type notSupported struct{ reason string }

func (n *notSupported) Error() string { return n.reason }

// NotSupported reports that the client cannot express the scenario.
func NotSupported(format string, args ...any) error {
	return &notSupported{fmt.Sprintf(format, args...)}
}

// DefaultCount is the contract's default --count for a scenario.
func DefaultCount(scenario string) int64 {
	switch {
	case strings.HasPrefix(scenario, "compression-"):
		return CompressionDefaultCount
	case strings.HasPrefix(scenario, "consumer-group"):
		return ConsumerGroupDefaultCount
	case scenario == "log-compaction":
		return LogCompactionDefaultCount
	case scenario == "cluster":
		return ClusterDefaultCount
	}
	return RoundtripDefaultCount
}

func parseArgs(argv []string, stderr io.Writer) (Args, error) {
	flags := flag.NewFlagSet("run", flag.ContinueOnError)
	flags.SetOutput(stderr)
	bootstrap := flags.String("bootstrap", "", "HOST:PORT of the broker")
	scenario := flags.String("scenario", "", "the scenario to run")
	topic := flags.String("topic", "", "the scenario's topic")
	count := flags.Int64("count", -1, "number of messages (default: the scenario's)")
	seed := flags.Int64("seed", DefaultSeed, "message seed, 0..2^31-1")
	if err := flags.Parse(argv); err != nil {
		return Args{}, err
	}
	switch {
	case flags.NArg() != 0:
		return Args{}, fmt.Errorf("unexpected arguments %q", flags.Args())
	case *bootstrap == "" || *scenario == "" || *topic == "":
		return Args{}, errors.New("--bootstrap, --scenario and --topic are required")
	case !slices.Contains(Scenarios, *scenario):
		return Args{}, fmt.Errorf("unknown scenario %q (known: %s)", *scenario, strings.Join(Scenarios, ", "))
	case *seed < 0 || *seed >= 1<<31:
		return Args{}, errors.New("--seed must be in 0..2^31-1")
	case *count < -1:
		return Args{}, errors.New("--count must be >= 0")
	}
	args := Args{Bootstrap: *bootstrap, Scenario: *scenario, Topic: *topic, Count: *count, Seed: *seed}
	if args.Count < 0 {
		args.Count = DefaultCount(args.Scenario)
	}
	return args, nil
}

// Main runs the driver contract: `run --version` prints "<client> <version>"; otherwise it runs the scenario
// named by --scenario and exits 0 (pass), 1 (fail, the reason on stderr in a line starting "FAIL:") or 2 (the
// client cannot express the scenario). A scenario missing from `scenarios` is not supported.
func Main(client, version string, scenarios map[string]func(Args) error) {
	argv := os.Args[1:]
	if len(argv) == 1 && argv[0] == "--version" {
		fmt.Printf("%s %s\n", client, version)
		os.Exit(exitPass)
	}
	args, err := parseArgs(argv, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %s: bad arguments: %v\n", client, err)
		os.Exit(exitFail)
	}
	run, ok := scenarios[args.Scenario]
	if !ok {
		fmt.Fprintf(os.Stderr, "n/a: %s does not implement scenario %s\n", client, args.Scenario)
		os.Exit(exitNotSupported)
	}
	// The whole run is bounded: a client call stuck past its own timeout must not hang the caller.
	time.AfterFunc(OverallTimeout, func() {
		fmt.Fprintf(os.Stderr, "FAIL: %s %s: driver exceeded its overall timeout of %s\n", client, args.Scenario, OverallTimeout)
		os.Exit(exitFail)
	})
	started := time.Now()
	err = run(args)
	var unsupported *notSupported
	switch {
	case err == nil:
		fmt.Fprintf(os.Stderr, "ok: %s %s (%.1f s)\n", client, args.Scenario, time.Since(started).Seconds())
		os.Exit(exitPass)
	case errors.As(err, &unsupported):
		fmt.Fprintf(os.Stderr, "n/a: %s %s: %v\n", client, args.Scenario, err)
		os.Exit(exitNotSupported)
	default:
		fmt.Fprintf(os.Stderr, "FAIL: %s %s on %s topic %s: %v\n", client, args.Scenario, args.Bootstrap, args.Topic, err)
		os.Exit(exitFail)
	}
}

// Logf writes a progress line to stderr (kept in the matrix runner's log of the run).
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
