package redis

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Client settings common to every topology.
const (
	dialTimeout = time.Second
	// ioTimeout bounds a command that has no deadline of its own; every
	// call of the counter has one (ContextTimeoutEnabled), usually shorter.
	ioTimeout = 3 * time.Second
)

// topology is a go-redis client for one of HEADCOUNT_REDIS_URL's forms,
// with what the log may say about it (never a password).
type topology struct {
	client goredis.UniversalClient
	kind   string // "redis", "sentinel" or "cluster"
	where  string // the addresses, plus the master's name for Sentinel
}

// dial reads rawURL and returns a client for it; nothing is sent yet.
//
//   - redis://[[user]:password@]host:port[/db], rediss://... and unix://...
//     are one Redis, read by go-redis' ParseURL;
//   - redis+sentinel://[[user]:password@]host:port[,host:port...][/db]?master=NAME
//     is a Sentinel-managed master: the hosts are sentinels, the password
//     is the master's (sentinel_password=... for the sentinels' own);
//   - redis+cluster://[[user]:password@]host:port[,host:port...] is a
//     Redis Cluster: the hosts are any of its nodes.
//
// Valkey speaks the same protocol in each form.
func dial(rawURL, clientName string) (topology, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return topology{}, errors.New("redis: bad URL: no scheme (want redis://, rediss://, redis+sentinel:// or redis+cluster://)")
	}
	switch scheme {
	case "redis+sentinel":
		return dialSentinel(rest, clientName)
	case "redis+cluster":
		return dialCluster(rest, clientName)
	}
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		// url.Error repeats the URL, password included: keep only the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return topology{}, fmt.Errorf("redis: bad URL: %w", err)
	}
	opts.ClientName = clientName
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = dialTimeout, ioTimeout, ioTimeout
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = 1
	return topology{client: goredis.NewClient(opts), kind: "redis", where: opts.Addr}, nil
}

// multiHost is the part of a redis+sentinel:// or redis+cluster:// URL
// after the scheme: hosts, credentials, database and query.
type multiHost struct {
	addrs              []string
	username, password string
	db                 int
	query              url.Values
}

// parseMultiHost reads "[userinfo@]host:port[,host:port...][/db][?query]".
// net/url cannot: it takes the comma-separated hosts of IPv6 addresses for
// one malformed host.
func parseMultiHost(rest string) (multiHost, error) {
	var m multiHost
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		u, err := url.Parse("redis://" + authority[:i+1] + "host")
		if err != nil {
			return m, errors.New("redis: bad URL: unreadable user or password")
		}
		m.username = u.User.Username()
		m.password, _ = u.User.Password()
		authority = authority[i+1:]
	}
	for _, hp := range strings.Split(authority, ",") {
		host, port, err := net.SplitHostPort(hp)
		if err != nil || host == "" {
			return m, fmt.Errorf("redis: bad URL: %q is not host:port", hp)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return m, fmt.Errorf("redis: bad URL: bad port in %q", hp)
		}
		m.addrs = append(m.addrs, net.JoinHostPort(host, port))
	}
	u, err := url.Parse("redis://host" + tail)
	if err != nil {
		return m, errors.New("redis: bad URL: unreadable path or query")
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if m.db, err = strconv.Atoi(db); err != nil || m.db < 0 {
			return m, fmt.Errorf("redis: bad URL: invalid database number %q", db)
		}
	}
	m.query = u.Query()
	return m, nil
}

// only refuses any query parameter but allowed, so a typo is not ignored.
func (m multiHost) only(allowed ...string) error {
	for k := range m.query {
		if !strings.Contains(" "+strings.Join(allowed, " ")+" ", " "+k+" ") {
			return fmt.Errorf("redis: bad URL: unknown parameter %q", k)
		}
	}
	return nil
}

// universal returns the client options of a multi-host URL, with the
// timeouts and retries every topology shares.
func (m multiHost) universal(clientName string) *goredis.UniversalOptions {
	return &goredis.UniversalOptions{
		Addrs:                 m.addrs,
		Username:              m.username,
		Password:              m.password,
		DB:                    m.db,
		ClientName:            clientName,
		DialTimeout:           dialTimeout,
		ReadTimeout:           ioTimeout,
		WriteTimeout:          ioTimeout,
		ContextTimeoutEnabled: true,
		// The keeper retries; a failing call should fail fast instead.
		MaxRetries: 1,
	}
}

func dialSentinel(rest, clientName string) (topology, error) {
	m, err := parseMultiHost(rest)
	if err != nil {
		return topology{}, err
	}
	if err := m.only("master", "sentinel_password"); err != nil {
		return topology{}, err
	}
	master := m.query.Get("master")
	if master == "" {
		return topology{}, errors.New("redis: bad URL: redis+sentinel:// needs ?master=NAME")
	}
	opts := m.universal(clientName)
	opts.MasterName, opts.SentinelPassword = master, m.query.Get("sentinel_password")
	return topology{client: goredis.NewFailoverClient(opts.Failover()), kind: "sentinel", where: master + "@" + strings.Join(m.addrs, ",")}, nil
}

func dialCluster(rest, clientName string) (topology, error) {
	m, err := parseMultiHost(rest)
	if err != nil {
		return topology{}, err
	}
	if err := m.only(); err != nil {
		return topology{}, err
	}
	if m.db != 0 {
		return topology{}, errors.New("redis: bad URL: a Redis Cluster has only database 0")
	}
	return topology{client: goredis.NewClusterClient(m.universal(clientName).Cluster()), kind: "cluster", where: strings.Join(m.addrs, ",")}, nil
}
