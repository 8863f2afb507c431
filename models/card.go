package models

import (
	"crypto/rand"
	"math/big"
)

// ValidCard reports whether s is a 13-digit club card number with a correct EAN-13 check
// digit, so that any till scanner reads it from an EAN-13 barcode.
func ValidCard(s string) bool {
	if len(s) != 13 {
		return false
	}
	for i := 0; i < 13; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s[12] == ean13CheckDigit(s[:12])
}

// WithCheckDigit appends the EAN-13 check digit to twelve digits, making a card number.
func WithCheckDigit(first12 string) string {
	return first12 + string(ean13CheckDigit(first12))
}

// ean13CheckDigit computes the check digit of the first twelve digits: weights 1,3,1,3,...
func ean13CheckDigit(first12 string) byte {
	sum := 0
	for i := 0; i < 12; i++ {
		d := int(first12[i] - '0')
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

// cardPrefix is a GS1 "restricted circulation" prefix (20-29): numbers a shop may use
// internally without clashing with any product's barcode.
const cardPrefix = "29"

// NewCardNumber returns a random card number under cardPrefix with its check digit.
func NewCardNumber() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(10_000_000_000))
	if err != nil {
		return "", err
	}
	return WithCheckDigit(cardPrefix + leftPad(n.String(), 10)), nil
}

func leftPad(s string, width int) string {
	for len(s) < width {
		s = "0" + s
	}
	return s
}
