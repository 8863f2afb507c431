// Package clv holds the customer-lifetime-value maths of the metrics job: the BG/NBD purchase
// model (Fader, Hardie & Lee 2005), the Gamma-Gamma spend model (Fader & Hardie 2013) and the
// discounted CLV built from both. It is pure: no database, no clock, no I/O.
//
// Conventions follow the lifetimes library. A customer is summarised by
//   - frequency x: the number of repeat purchase periods (distinct purchase days − 1),
//   - recency t_x: periods from the first to the last purchase (0 when x = 0),
//   - age T: periods from the first purchase to the end of observation,
//
// all in one time unit. The product uses days (so α is per day); the tests use the weekly CDNOW
// summary. Fits take groups of identical summaries with a count, so a million members whose
// triples repeat cost no more than their distinct triples.
package clv

import "errors"

// ErrInvalidInput is wrapped by every error about bad input (negative values, t_x > T,
// non-positive parameters, …), so callers can tell bad data from a failed fit with errors.Is.
var ErrInvalidInput = errors.New("invalid input")

// ErrNotIdentified is returned when the data cannot determine the parameters at all, such as a
// BG/NBD fit where no customer has a repeat purchase (drop-out is then never observed and the
// likelihood grows without bound towards r/α → 0). The metrics job reports the model as absent.
var ErrNotIdentified = errors.New("model not identified by the data")
