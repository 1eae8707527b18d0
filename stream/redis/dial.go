package redis

import goredis "github.com/redis/go-redis/v9"

// Dial returns a go-redis client for any of HEADCOUNT_REDIS_URL's forms
// (one Redis, Sentinel, Cluster), with the timeouts the count uses; nothing
// is sent yet. It is for the other adapters that share the deployment's
// Redis (auth/redis), so every part reads the URL the same way.
func Dial(rawURL, clientName string) (goredis.UniversalClient, error) {
	topo, err := dial(rawURL, clientName)
	if err != nil {
		return nil, err
	}
	return topo.client, nil
}

// KeyPrefix is how every key of the deployment with prefix starts: the
// prefix as a Cluster hash tag, so an adapter's keys live in the count's
// slot too.
func KeyPrefix(prefix string) string { return tagged(prefix) }
