// dflockd-interop: the upstream Go client's side of the cross-client tests.
//
//	dflockd-interop contend --server HOST:PORT --keys a,b,c --workers W --rounds N
//	    prints "ready", waits for a line on stdin, then each of W workers takes
//	    the keys in turn N times with client.Lock (acquire, a short hold,
//	    release) and finally prints one line per critical section:
//	    "<key> <start_ns> <end_ns>" on CLOCK_MONOTONIC, the clock the Rust and
//	    Python sides read too, so the test can compare sections across processes.
//	dflockd-interop soak --server HOST:PORT --keys a,b,c --workers W --seconds S --max-hold-ms H --lease-s L
//	    prints "ready", waits for a line on stdin, then each of W workers, for
//	    S seconds, takes a random key (acquire, a random hold up to H ms,
//	    release), retrying after any error; finally prints one line per
//	    critical section, "<key> <start_ns> <end_ns> confirmed|unconfirmed"
//	    (confirmed: the server accepted the release, so the grant was live
//	    throughout), and "ops <n> errors <m>" on stderr.
//	dflockd-interop shard --n N
//	    reads keys from stdin, one per line, and prints client.CRC32Shard(key, N).
//	dflockd-interop tlscost --server HOST:PORT --ca FILE --rounds N
//	    the Go client's TLS costs, for comparison with the component's: the
//	    median of N client.DialTLS calls (TCP connect + full handshake, no
//	    session resumption) and of N acquire+release round trips on one TLS
//	    connection, in microseconds.
//
// Built by `cargo xtask setup` against the same dflockd source as the server.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/mtingers/dflockd/client"
)

// monoNs reads CLOCK_MONOTONIC (Linux), comparable across processes.
func monoNs() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		fail("clock_gettime: %v", errno)
	}
	return ts.Nano()
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "dflockd-interop: "+format+"\n", args...)
	os.Exit(1)
}

type section struct {
	key        string
	start, end int64
}

func contend(args []string) {
	fs := flag.NewFlagSet("contend", flag.ExitOnError)
	server := fs.String("server", "127.0.0.1:6388", "host:port")
	keys := fs.String("keys", "interop", "comma-separated keys")
	workers := fs.Int("workers", 2, "concurrent workers")
	rounds := fs.Int("rounds", 100, "critical sections per worker")
	holdUs := fs.Int("hold-us", 200, "microseconds held per section")
	fs.Parse(args)
	keyList := strings.Split(*keys, ",")

	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fail("waiting for the start line: %v", err)
	}

	results := make([][]section, *workers)
	errs := make(chan error, *workers)
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < *rounds; i++ {
				key := keyList[(w+i)%len(keyList)]
				lock := &client.Lock{Key: key, Servers: []string{*server}, AcquireTimeout: 60 * time.Second, LeaseTTL: 10}
				ok, err := lock.Acquire(context.Background())
				if err != nil || !ok {
					errs <- fmt.Errorf("worker %d acquire %s: ok=%v err=%v", w, key, ok, err)
					return
				}
				start := monoNs()
				time.Sleep(time.Duration(*holdUs) * time.Microsecond)
				end := monoNs()
				if err := lock.Release(context.Background()); err != nil {
					errs <- fmt.Errorf("worker %d release %s: %v", w, key, err)
					return
				}
				results[w] = append(results[w], section{key, start, end})
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fail("%v", err)
	}
	out := bufio.NewWriter(os.Stdout)
	for _, sections := range results {
		for _, s := range sections {
			fmt.Fprintf(out, "%s %d %d\n", s.key, s.start, s.end)
		}
	}
	out.Flush()
}

func soak(args []string) {
	fs := flag.NewFlagSet("soak", flag.ExitOnError)
	server := fs.String("server", "127.0.0.1:6388", "host:port")
	keys := fs.String("keys", "soak", "comma-separated keys")
	workers := fs.Int("workers", 2, "concurrent workers")
	seconds := fs.Int("seconds", 60, "how long to run")
	maxHoldMs := fs.Int("max-hold-ms", 50, "longest hold of a section")
	leaseS := fs.Int("lease-s", 5, "lease of each grant")
	fs.Parse(args)
	keyList := strings.Split(*keys, ",")

	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fail("waiting for the start line: %v", err)
	}
	deadline := time.Now().Add(time.Duration(*seconds) * time.Second)
	type soaked struct {
		section
		confirmed bool
	}
	results := make([][]soaked, *workers)
	errCounts := make([]int, *workers)
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w) + time.Now().UnixNano()))
			for time.Now().Before(deadline) {
				key := keyList[rng.Intn(len(keyList))]
				lock := &client.Lock{Key: key, Servers: []string{*server}, AcquireTimeout: 10 * time.Second, LeaseTTL: *leaseS}
				ok, err := lock.Acquire(context.Background())
				if err != nil || !ok {
					errCounts[w]++
					lock.Close()
					time.Sleep(50 * time.Millisecond)
					continue
				}
				start := monoNs()
				time.Sleep(time.Duration(rng.Intn(*maxHoldMs+1)) * time.Millisecond)
				end := monoNs()
				err = lock.Release(context.Background())
				if err != nil {
					errCounts[w]++
				}
				results[w] = append(results[w], soaked{section{key, start, end}, err == nil})
			}
		}(w)
	}
	wg.Wait()
	out := bufio.NewWriter(os.Stdout)
	ops, errs := 0, 0
	for w, sections := range results {
		errs += errCounts[w]
		for _, s := range sections {
			ops++
			status := "unconfirmed"
			if s.confirmed {
				status = "confirmed"
			}
			fmt.Fprintf(out, "%s %d %d %s\n", s.key, s.start, s.end, status)
		}
	}
	out.Flush()
	fmt.Fprintf(os.Stderr, "ops %d errors %d\n", ops, errs)
}

func shard(args []string) {
	fs := flag.NewFlagSet("shard", flag.ExitOnError)
	n := fs.Int("n", 3, "number of servers")
	fs.Parse(args)
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		fmt.Fprintln(out, client.CRC32Shard(in.Text(), *n))
	}
	if err := in.Err(); err != nil {
		fail("reading keys: %v", err)
	}
	out.Flush()
}

func medianUs(samples []time.Duration) float64 {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	return float64(samples[len(samples)/2].Nanoseconds()) / 1e3
}

func tlscost(args []string) {
	fs := flag.NewFlagSet("tlscost", flag.ExitOnError)
	server := fs.String("server", "127.0.0.1:6388", "host:port")
	caFile := fs.String("ca", "", "PEM file of the CA that signed the server")
	rounds := fs.Int("rounds", 200, "samples of each")
	fs.Parse(args)
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fail("reading the CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("no certificate in %s", *caFile)
	}
	host, _, err := net.SplitHostPort(*server)
	if err != nil {
		fail("server: %v", err)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: host}
	var dials, trips []time.Duration
	for i := 0; i < *rounds; i++ {
		start := time.Now()
		c, err := client.DialTLS(*server, cfg)
		if err != nil {
			fail("DialTLS: %v", err)
		}
		dials = append(dials, time.Since(start))
		c.Close()
	}
	c, err := client.DialTLS(*server, cfg)
	if err != nil {
		fail("DialTLS: %v", err)
	}
	defer c.Close()
	for i := 0; i < *rounds; i++ {
		start := time.Now()
		token, _, err := client.Acquire(c, "tlscost", 10*time.Second)
		if err != nil {
			fail("acquire: %v", err)
		}
		if err := client.Release(c, "tlscost", token); err != nil {
			fail("release: %v", err)
		}
		trips = append(trips, time.Since(start))
	}
	fmt.Printf("handshake_p50_us %.0f\nroundtrip_p50_us %.0f\n", medianUs(dials), medianUs(trips))
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: dflockd-interop contend|shard [flags]")
	}
	switch os.Args[1] {
	case "contend":
		contend(os.Args[2:])
	case "soak":
		soak(os.Args[2:])
	case "shard":
		shard(os.Args[2:])
	case "tlscost":
		tlscost(os.Args[2:])
	default:
		fail("unknown mode %q", os.Args[1])
	}
}
