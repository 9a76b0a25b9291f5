package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bounds of a Limit. They keep every quantity the bucket script computes
// (burst × period in milliseconds) an exact integer in Lua's doubles.
const (
	MaxTokens = 1_000_000
	MaxBurst  = 1_000_000
)

// Rate is a sustained request rate: Tokens requests per Per, refilled
// continuously (20/s adds one token every 50 ms).
type Rate struct {
	Tokens int
	Per    time.Duration // time.Second, time.Minute or time.Hour
}

var rateUnits = map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}

// ParseRate reads a rate written as requests/unit: "20/s", "600/m", "1000/h".
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	per, known := rateUnits[unit]
	tokens, err := strconv.Atoi(n)
	if !ok || !known || err != nil {
		return Rate{}, fmt.Errorf("rate %q: want requests per unit such as 20/s, 600/m or 1000/h", s)
	}
	r := Rate{Tokens: tokens, Per: per}
	if err := r.validate(); err != nil {
		return Rate{}, err
	}
	return r, nil
}

func (r Rate) validate() error {
	if r.Tokens < 1 || r.Tokens > MaxTokens {
		return fmt.Errorf("rate %s: want from 1 to %d requests per unit", r, MaxTokens)
	}
	if r.Per != time.Second && r.Per != time.Minute && r.Per != time.Hour {
		return fmt.Errorf("rate %s: the unit must be a second, a minute or an hour", r)
	}
	return nil
}

// String writes the rate as ParseRate reads it.
func (r Rate) String() string {
	for unit, per := range rateUnits {
		if per == r.Per {
			return strconv.Itoa(r.Tokens) + "/" + unit
		}
	}
	return strconv.Itoa(r.Tokens) + "/" + r.Per.String()
}

// atMost reports whether r is no faster than o.
func (r Rate) atMost(o Rate) bool {
	// Tokens ≤ 10⁶ and Per ≤ 1 h (3.6·10¹² ns): the products fit an int64.
	return int64(r.Tokens)*int64(o.Per) <= int64(o.Tokens)*int64(r.Per)
}

// Limit is one token bucket's policy: it holds at most Burst tokens, refills
// at Rate, and a request spends one token.
type Limit struct {
	Rate  Rate
	Burst int
}

// String is "20/s, burst 200".
func (l Limit) String() string { return l.Rate.String() + ", burst " + strconv.Itoa(l.Burst) }

func (l Limit) validate() error {
	if err := l.Rate.validate(); err != nil {
		return err
	}
	if l.Burst < 1 || l.Burst > MaxBurst {
		return fmt.Errorf("burst %d: want from 1 to %d", l.Burst, MaxBurst)
	}
	return nil
}

// Within reports why l does not fit inside o (a key's limit inside its
// organization's: no faster, no larger), or nil.
func (l Limit) Within(o Limit) error {
	var errs []error
	if !l.Rate.atMost(o.Rate) {
		errs = append(errs, fmt.Errorf("rate %s exceeds %s", l.Rate, o.Rate))
	}
	if l.Burst > o.Burst {
		errs = append(errs, fmt.Errorf("burst %d exceeds %d", l.Burst, o.Burst))
	}
	return errors.Join(errs...)
}
