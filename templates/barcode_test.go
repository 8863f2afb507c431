package templates

import (
	"bytes"
	"image/png"
	"testing"
)

func TestBarcodePNG(t *testing.T) {
	t.Parallel()
	b, err := BarcodePNG("7012345678908", 400, 160)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got.X != 400 || got.Y != 160 {
		t.Errorf("size %v, want 400x160", got)
	}
	// An EAN-13 has 30 bars: two in each of the three guards and two per digit for 12 digits.
	bars, dark := 0, false
	for x := 0; x < 400; x++ {
		r, _, _, _ := img.At(x, 80).RGBA()
		if r == 0 && !dark {
			bars++
		}
		dark = r == 0
	}
	if bars != 30 {
		t.Errorf("%d bars across the middle row, want 30", bars)
	}
	if _, err := BarcodePNG("7012345678904", 400, 160); err == nil {
		t.Error("a card with a wrong check digit was drawn")
	}
}
