package config

import (
	"slices"
	"strings"
	"testing"
)

// TestRedisRefusesWithoutSharedSecret checks that the refusal says why, so
// an operator who meets it knows what to share between instances.
func TestRedisRefusesWithoutSharedSecret(t *testing.T) {
	_, err := Load(env(map[string]string{"HEADCOUNT_REDIS_URL": "redis://127.0.0.1:6379/0"}))
	if err == nil {
		t.Fatal("Load with HEADCOUNT_REDIS_URL and no HEADCOUNT_SESSION_SECRET succeeded")
	}
	for _, want := range []string{"HEADCOUNT_SESSION_SECRET", "HEADCOUNT_REDIS_URL", "every instance"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := Load(env(map[string]string{"HEADCOUNT_REDIS_URL": "redis://127.0.0.1:6379/0", "HEADCOUNT_SESSION_SECRET": goodSecret})); err != nil {
		t.Errorf("Load with Redis and a shared secret: %v", err)
	}
}

// TestLoadReadsExactlyTheTable checks that Load asks the environment for
// every variable of the help table and for nothing else, so --help can
// never miss one.
func TestLoadReadsExactlyTheTable(t *testing.T) {
	var read []string
	if _, err := Load(func(k string) string { read = append(read, k); return "" }); err != nil {
		t.Fatal(err)
	}
	var table []string
	for _, v := range Variables() {
		table = append(table, v.Name)
		if v.Default == "" || v.Meaning == "" || v.parse == nil {
			t.Errorf("%s: the table lacks its default, meaning or parser", v.Name)
		}
	}
	slices.Sort(read)
	slices.Sort(table)
	if !slices.Equal(slices.Compact(read), table) {
		t.Errorf("Load read %v; the table lists %v", read, table)
	}
	if len(table) != len(slices.Compact(slices.Clone(table))) {
		t.Errorf("the table lists a variable twice: %v", table)
	}
}

func TestUnknown(t *testing.T) {
	got := Unknown([]string{
		"PATH=/usr/bin",
		"HEADCOUNT_ADDR=127.0.0.1:1",
		"HEADCOUNT_HEARTBAET=1s",
		"HEADCOUNT_REDIS=redis://x",
		"HEADCOUNT_HEARTBAET=2s",
		"GITHUB_KEYS=x",
		"HEADCOUNT_TLS_CERT=",
		"HEADCOUNT_EMPTY=",
	})
	want := []string{"HEADCOUNT_EMPTY", "HEADCOUNT_HEARTBAET", "HEADCOUNT_REDIS"}
	if !slices.Equal(got, want) {
		t.Errorf("Unknown = %v, want %v", got, want)
	}
	if got := Unknown([]string{"HEADCOUNT_ADDR=x", "HOME=/root"}); len(got) != 0 {
		t.Errorf("Unknown of known variables = %v, want none", got)
	}
}
