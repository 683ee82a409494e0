package gguf

// Fused kernels for the types of a Q4_K_M file: they compute exactly the
// sums of Dot's generic path (same products, same order), but read the
// quants straight from the block instead of decoding them into a buffer
// first, which halves the time per weight. TestFusedKernelsMatchGeneric
// checks bit equality.

// dotQ4K is Dot for Q4_K.
func dotQ4K(row []byte, x []float32) float32 {
	var sum float32
	for i := range len(x) / QK {
		blk := row[i*144 : (i+1)*144]
		d, dmin := f16(blk), f16(blk[2:])
		scales, qs := blk[4:16], blk[16:144]
		xb := x[i*QK : (i+1)*QK]
		for j := range 4 {
			src := qs[32*j : 32*j+32]
			xl := xb[64*j : 64*j+32]
			xh := xb[64*j+32 : 64*j+64]
			var tl, th, sl, sh float32
			for l, v := range src {
				tl += float32(float32(v&0xf) * xl[l])
				th += float32(float32(v>>4) * xh[l])
			}
			for l := range xl {
				sl += xl[l]
			}
			for l := range xh {
				sh += xh[l]
			}
			sc, m := scaleMinK4(2*j, scales)
			sum += float32(d * float32(sc) * tl)
			sum += float32(-(dmin * float32(m)) * sl)
			sc, m = scaleMinK4(2*j+1, scales)
			sum += float32(d * float32(sc) * th)
			sum += float32(-(dmin * float32(m)) * sh)
		}
	}
	return sum
}

// dotQ6K is Dot for Q6_K.
func dotQ6K(row []byte, x []float32) float32 {
	var sum float32
	for i := range len(x) / QK {
		blk := row[i*210 : (i+1)*210]
		ql, qh, scales := blk[0:128], blk[128:192], blk[192:208]
		d := f16(blk[208:])
		xb := x[i*QK : (i+1)*QK]
		for n := 0; n < QK; n += 128 {
			l4, h := ql[n/2:n/2+64], qh[n/4:n/4+32]
			// Sub-blocks of 16: s = n/16 + 2k + l/16 for value n+32k+l.
			var t [8]float32
			for half := range 2 {
				for l := 16 * half; l < 16*half+16; l++ {
					t[half] += float32(float32(int8(l4[l]&0xf|(h[l]&3)<<4)-32) * xb[n+l])
					t[2+half] += float32(float32(int8(l4[l+32]&0xf|(h[l]>>2&3)<<4)-32) * xb[n+l+32])
					t[4+half] += float32(float32(int8(l4[l]>>4|(h[l]>>4&3)<<4)-32) * xb[n+l+64])
					t[6+half] += float32(float32(int8(l4[l+32]>>4|(h[l]>>6&3)<<4)-32) * xb[n+l+96])
				}
			}
			for s := range 8 {
				sum += float32(d * float32(int8(scales[n/16+s])) * t[s])
			}
		}
	}
	return sum
}
