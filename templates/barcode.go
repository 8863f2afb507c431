package templates

import (
	"bytes"
	"fmt"
	"image/png"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/ean"
)

// BarcodePNG draws a club card number as an EAN-13 barcode any till scanner reads: a PNG of
// width×height pixels (the bars scaled to fit; 400×160 prints and scans well).
func BarcodePNG(card string, width, height int) ([]byte, error) {
	code, err := ean.Encode(card)
	if err != nil {
		return nil, fmt.Errorf("barcode for card %q: %w", card, err)
	}
	scaled, err := barcode.Scale(code, width, height)
	if err != nil {
		return nil, fmt.Errorf("barcode for card %q: %w", card, err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, scaled); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
