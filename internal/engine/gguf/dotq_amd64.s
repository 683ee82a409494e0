#include "textflag.h"

// AVX2 integer cores of the quantised dot products (see dotq.go for the
// Go twins, which compute the same integers). VPMADDUBSW multiplies
// unsigned weight quants (at most 63) with signed activation quants (at
// most 127 in magnitude) and adds pairs into int16 without saturating
// (2·63·127 < 32767); VPMADDWD then applies the int16 sub-block scales
// and widens to int32.

// func q4kDotAVX2(row *byte, q8 *int8, bsums *int16, d *float32, n int) float32
// The dot product of n Q4_K super-blocks of row (144 bytes each) with their
// Q8_K activations (quants q8, 16-value sums bsums, scales d): per block the
// integers sumi = Σ_j sc_j·Σ q·q_y and mins = Σ_j m_j·(q_y sum of sub-block
// j), then in float32, in dotQ4KQ8KGo's order and roundings,
// sum += (d·d_y)·sumi; sum -= (dmin·d_y)·mins. The 6-bit scales and mins
// are unpacked as ggml does (utmp with kmask1-3) into int16 on the stack;
// the float16 scales are widened with F16C (exact).
TEXT ·q4kDotAVX2(SB), NOSPLIT, $64-44
	MOVQ row+0(FP), SI
	MOVQ q8+8(FP), DI
	MOVQ bsums+16(FP), BX
	MOVQ d+24(FP), DX
	MOVQ n+32(FP), CX
	VXORPS X12, X12, X12
	MOVQ $0x0f0f0f0f0f0f0f0f, AX
	VMOVQ AX, X15
	VPBROADCASTQ X15, Y15
q4kloop:
	MOVL 4(SI), AX
	MOVL 8(SI), R8
	MOVL 12(SI), R9
	MOVL R9, R10
	SHRL $4, R10
	ANDL $0x0f0f0f0f, R10
	MOVL R8, R11
	SHRL $6, R11
	ANDL $0x03030303, R11
	SHLL $4, R11
	ORL R11, R10 // mins 4-7
	MOVL R8, R12
	ANDL $0x3f3f3f3f, R12 // mins 0-3
	MOVL R9, R13
	ANDL $0x0f0f0f0f, R13
	MOVL AX, R11
	SHRL $6, R11
	ANDL $0x03030303, R11
	SHLL $4, R11
	ORL R11, R13 // scales 4-7
	ANDL $0x3f3f3f3f, AX // scales 0-3
	// (assembled in registers: four 4-byte stores read back as one
	// 16-byte load would defeat store forwarding)
	SHLQ $32, R13
	ORQ R13, AX
	SHLQ $32, R10
	ORQ R10, R12
	VMOVQ AX, X1
	VPINSRQ $1, R12, X1, X1
	VPMOVZXBW X1, Y1
	VMOVDQU Y1, 16(SP) // int16 scales at 16(SP), mins at 32(SP)
	// mins: pairs of 16-value sums make the 32-value sub-block sums
	VMOVDQU (BX), Y2
	VEXTRACTI128 $1, Y2, X3
	VPHADDW X3, X2, X4
	VEXTRACTI128 $1, Y1, X5
	VPMADDWD X5, X4, X4
	VPSHUFD $0x4e, X4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0xb1, X4, X5
	VPADDD X5, X4, X4
	VMOVD X4, R14 // mins
	VPXOR Y0, Y0, Y0
	VMOVDQU 16(SI), Y1
	VPSRLW $4, Y1, Y2
	VPAND Y15, Y1, Y1
	VPAND Y15, Y2, Y2
	VPMADDUBSW 0(DI), Y1, Y1
	VPMADDUBSW 32(DI), Y2, Y2
	VPBROADCASTW 16(SP), Y3
	VPBROADCASTW 18(SP), Y4
	VPMADDWD Y3, Y1, Y1
	VPMADDWD Y4, Y2, Y2
	VPADDD Y1, Y0, Y0
	VPADDD Y2, Y0, Y0
	VMOVDQU 48(SI), Y1
	VPSRLW $4, Y1, Y2
	VPAND Y15, Y1, Y1
	VPAND Y15, Y2, Y2
	VPMADDUBSW 64(DI), Y1, Y1
	VPMADDUBSW 96(DI), Y2, Y2
	VPBROADCASTW 20(SP), Y3
	VPBROADCASTW 22(SP), Y4
	VPMADDWD Y3, Y1, Y1
	VPMADDWD Y4, Y2, Y2
	VPADDD Y1, Y0, Y0
	VPADDD Y2, Y0, Y0
	VMOVDQU 80(SI), Y1
	VPSRLW $4, Y1, Y2
	VPAND Y15, Y1, Y1
	VPAND Y15, Y2, Y2
	VPMADDUBSW 128(DI), Y1, Y1
	VPMADDUBSW 160(DI), Y2, Y2
	VPBROADCASTW 24(SP), Y3
	VPBROADCASTW 26(SP), Y4
	VPMADDWD Y3, Y1, Y1
	VPMADDWD Y4, Y2, Y2
	VPADDD Y1, Y0, Y0
	VPADDD Y2, Y0, Y0
	VMOVDQU 112(SI), Y1
	VPSRLW $4, Y1, Y2
	VPAND Y15, Y1, Y1
	VPAND Y15, Y2, Y2
	VPMADDUBSW 192(DI), Y1, Y1
	VPMADDUBSW 224(DI), Y2, Y2
	VPBROADCASTW 28(SP), Y3
	VPBROADCASTW 30(SP), Y4
	VPMADDWD Y3, Y1, Y1
	VPMADDWD Y4, Y2, Y2
	VPADDD Y1, Y0, Y0
	VPADDD Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, R15 // sumi
	MOVWLZX 0(SI), AX
	VMOVD AX, X8
	VCVTPH2PS X8, X8 // d
	MOVWLZX 2(SI), AX
	VMOVD AX, X9
	VCVTPH2PS X9, X9 // dmin
	VMOVSS (DX), X10 // d_y
	VMULSS X10, X8, X8
	VCVTSI2SSL R15, X11, X11
	VMULSS X11, X8, X8
	VADDSS X8, X12, X12
	VMULSS X10, X9, X9
	VCVTSI2SSL R14, X11, X11
	VMULSS X11, X9, X9
	VSUBSS X9, X12, X12
	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $32, BX
	ADDQ $4, DX
	DECQ CX
	JNZ q4kloop
	VMOVSS X12, ret+40(FP)
	VZEROUPPER
	RET

// func q6kDotAVX2(row *byte, q8 *int8, bsums *int16, d *float32, n int) float32
// The dot product of n Q6_K super-blocks of row (210 bytes each) with their
// Q8_K activations: per block the integer isum = Σ_s sc_s·Σ (q-32)·q_y, the
// -32 applied as 32·Σ_s sc_s·(q_y sum of sub-block s), then in float32, in
// dotQ6KQ8KGo's order, sum += (d·d_y)·isum.
TEXT ·q6kDotAVX2(SB), NOSPLIT, $64-44
	MOVQ row+0(FP), SI
	MOVQ q8+8(FP), DI
	MOVQ bsums+16(FP), BX
	MOVQ d+24(FP), DX
	MOVQ n+32(FP), CX
	VXORPS X12, X12, X12
	MOVQ $0x0f0f0f0f0f0f0f0f, AX
	VMOVQ AX, X15
	VPBROADCASTQ X15, Y15
	MOVQ $0x0303030303030303, AX
	VMOVQ AX, X14
	VPBROADCASTQ X14, Y14
q6kloop:
	VPMOVSXBW 192(SI), Y1 // the 16 int8 scales as int16
	VMOVDQU Y1, 0(SP)
	VPMADDWD (BX), Y1, Y8 // Σ sc_s·bsum_s, 8 partial int32 sums
	VPSLLD $5, Y8, Y8 // ·32
	VPXOR Y0, Y0, Y0
	VPSUBD Y8, Y0, Y0
	VMOVDQU 128(SI), Y1
	VMOVDQU 0(SI), Y2
	VMOVDQU 32(SI), Y3
	VPAND Y15, Y2, Y4
	VPAND Y14, Y1, Y5
	VPSLLW $4, Y5, Y5
	VPOR Y5, Y4, Y4
	VPMADDUBSW 0(DI), Y4, Y4
	VPBROADCASTW 0(SP), Y6
	VPBROADCASTW 2(SP), Y7
	VPBLENDD $0xf0, Y7, Y6, Y6
	VPMADDWD Y6, Y4, Y4
	VPADDD Y4, Y0, Y0
	VPAND Y15, Y3, Y4
	VPSRLW $2, Y1, Y5
	VPAND Y14, Y5, Y5
	VPSLLW $4, Y5, Y5
	VPOR Y5, Y4, Y4
	VPMADDUBSW 32(DI), Y4, Y4
	VPBROADCASTW 4(SP), Y6
	VPBROADCASTW 6(SP), Y7
	VPBLENDD $0xf0, Y7, Y6, Y6
	VPMADDWD Y6, Y4, Y4
	VPADDD Y4, Y0, Y0
	VPSRLW $4, Y2, Y4
	VPAND Y15, Y4, Y4
	VPSRLW $4, Y1, Y5
	VPAND Y14, Y5, Y5
	VPSLLW $4, Y5, Y5
	VPOR Y5, Y4, Y4
	VPMADDUBSW 64(DI), Y4, Y4
	VPBROADCASTW 8(SP), Y6
	VPBROADCASTW 10(SP), Y7
	VPBLENDD $0xf0, Y7, Y6, Y6
	VPMADDWD Y6, Y4, Y4
	VPADDD Y4, Y0, Y0
	VPSRLW $4, Y3, Y4
	VPAND Y15, Y4, Y4
	VPSRLW $6, Y1, Y5
	VPAND Y14, Y5, Y5
	VPSLLW $4, Y5, Y5
	VPOR Y5, Y4, Y4
	VPMADDUBSW 96(DI), Y4, Y4
	VPBROADCASTW 12(SP), Y6
	VPBROADCASTW 14(SP), Y7
	VPBLENDD $0xf0, Y7, Y6, Y6
	VPMADDWD Y6, Y4, Y4
	VPADDD Y4, Y0, Y0
	VMOVDQU 160(SI), Y1
	VMOVDQU 64(SI), Y2
	VMOVDQU 96(SI), Y3
	VPAND Y15, Y2, Y4
	VPAND Y14, Y1, Y5
	VPSLLW $4, Y5, Y5
	VPOR Y5, Y4, Y4
	VPMADDUBSW 128(DI), Y4, Y4
	VPBROADCASTW 16(SP), Y6
	VPBROADCASTW 18(SP), Y7
	VPBLENDD $0xf0, Y7, Y6, Y6
	VPMADDWD Y6, Y4, Y4
	VPADDD Y4, Y0, Y0
	VPAND Y15, Y3, Y4
	VPSRLW $2, Y1, Y5
	VPAND Y14, Y5, Y5
	VPSLLW $4, Y5, Y5
	VPOR Y5, Y4, Y4
	VPMADDUBSW 160(DI), Y4, Y4
	VPBROADCASTW 20(SP), Y6
	VPBROADCASTW 22(SP), Y7
	VPBLENDD $0xf0, Y7, Y6, Y6
	VPMADDWD Y6, Y4, Y4
	VPADDD Y4, Y0, Y0
	VPSRLW $4, Y2, Y4
	VPAND Y15, Y4, Y4
	VPSRLW $4, Y1, Y5
	VPAND Y14, Y5, Y5
	VPSLLW $4, Y5, Y5
	VPOR Y5, Y4, Y4
	VPMADDUBSW 192(DI), Y4, Y4
	VPBROADCASTW 24(SP), Y6
	VPBROADCASTW 26(SP), Y7
	VPBLENDD $0xf0, Y7, Y6, Y6
	VPMADDWD Y6, Y4, Y4
	VPADDD Y4, Y0, Y0
	VPSRLW $4, Y3, Y4
	VPAND Y15, Y4, Y4
	VPSRLW $6, Y1, Y5
	VPAND Y14, Y5, Y5
	VPSLLW $4, Y5, Y5
	VPOR Y5, Y4, Y4
	VPMADDUBSW 224(DI), Y4, Y4
	VPBROADCASTW 28(SP), Y6
	VPBROADCASTW 30(SP), Y7
	VPBLENDD $0xf0, Y7, Y6, Y6
	VPMADDWD Y6, Y4, Y4
	VPADDD Y4, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, R15 // isum
	MOVWLZX 208(SI), AX
	VMOVD AX, X8
	VCVTPH2PS X8, X8 // d
	VMULSS (DX), X8, X8
	VCVTSI2SSL R15, X11, X11
	VMULSS X11, X8, X8
	VADDSS X8, X12, X12
	ADDQ $210, SI
	ADDQ $256, DI
	ADDQ $32, BX
	ADDQ $4, DX
	DECQ CX
	JNZ q6kloop
	VMOVSS X12, ret+40(FP)
	VZEROUPPER
	RET

// func q4kDot4AVX2(row *byte, n int, a *q8kx4, out *[4]float32)
// q4kDotAVX2 for four activation vectors at once (a prompt's tokens). Per
// super-block the row's quants are unpacked once (Y6-Y13) and its eight
// sub-block scales broadcast once (on the stack at 64(SP), one 32-byte
// vector each, read by VPMADDWD as a memory operand); each token's integer
// sums go into its own accumulator (Y0-Y3), and the four are reduced
// together (three VPHADDD) into one vector of four sumi, as are the four
// tokens' mins. The float32 steps then run in the four lanes of one
// vector, each lane doing exactly q4kDotAVX2's scalar steps in its order
// (sum += (d·d_y)·sumi; sum -= (dmin·d_y)·mins), so every out[t] equals the
// one-token result bit for bit: integer sums are exact in any order, and
// the float32 operations per token are the same. The four running sums
// stay in X14 (loaded from out, zero on entry) for the whole row.
TEXT ·q4kDot4AVX2(SB), NOSPLIT, $320-32
	MOVQ row+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ a+16(FP), BX
	MOVQ out+24(FP), AX
	VMOVUPS (AX), X14
	XORQ R14, R14 // q8 offset
	XORQ R15, R15 // bsums offset
	XORQ DX, DX // d offset
	MOVQ $0x0f0f0f0f0f0f0f0f, AX
	VMOVQ AX, X15
	VPBROADCASTQ X15, Y15
q4k4loop:
	MOVL 4(SI), AX
	MOVL 8(SI), R8
	MOVL 12(SI), R9
	MOVL R9, R10
	SHRL $4, R10
	ANDL $0x0f0f0f0f, R10
	MOVL R8, R11
	SHRL $6, R11
	ANDL $0x03030303, R11
	SHLL $4, R11
	ORL R11, R10 // mins 4-7
	MOVL R8, R12
	ANDL $0x3f3f3f3f, R12 // mins 0-3
	MOVL R9, R13
	ANDL $0x0f0f0f0f, R13
	MOVL AX, R11
	SHRL $6, R11
	ANDL $0x03030303, R11
	SHLL $4, R11
	ORL R11, R13 // scales 4-7
	ANDL $0x3f3f3f3f, AX // scales 0-3
	SHLQ $32, R13
	ORQ R13, AX
	SHLQ $32, R10
	ORQ R10, R12
	VMOVQ AX, X1
	VPINSRQ $1, R12, X1, X1
	VPMOVZXBW X1, Y1
	VMOVDQU Y1, 16(SP) // int16 scales at 16(SP), mins at 32(SP)
	MOVWLZX 0(SI), AX
	VMOVD AX, X3
	VCVTPH2PS X3, X3
	VMOVSS X3, 48(SP) // d
	MOVWLZX 2(SI), AX
	VMOVD AX, X3
	VCVTPH2PS X3, X3
	VMOVSS X3, 52(SP) // dmin
	VPBROADCASTW 16(SP), Y4
	VMOVDQU Y4, 64(SP) // scale of sub-block 0
	VPBROADCASTW 18(SP), Y4
	VMOVDQU Y4, 96(SP) // scale of sub-block 1
	VPBROADCASTW 20(SP), Y4
	VMOVDQU Y4, 128(SP) // scale of sub-block 2
	VPBROADCASTW 22(SP), Y4
	VMOVDQU Y4, 160(SP) // scale of sub-block 3
	VPBROADCASTW 24(SP), Y4
	VMOVDQU Y4, 192(SP) // scale of sub-block 4
	VPBROADCASTW 26(SP), Y4
	VMOVDQU Y4, 224(SP) // scale of sub-block 5
	VPBROADCASTW 28(SP), Y4
	VMOVDQU Y4, 256(SP) // scale of sub-block 6
	VPBROADCASTW 30(SP), Y4
	VMOVDQU Y4, 288(SP) // scale of sub-block 7
	VMOVDQU 16(SI), Y6
	VPSRLW $4, Y6, Y7
	VPAND Y15, Y6, Y6
	VPAND Y15, Y7, Y7
	VMOVDQU 48(SI), Y8
	VPSRLW $4, Y8, Y9
	VPAND Y15, Y8, Y8
	VPAND Y15, Y9, Y9
	VMOVDQU 80(SI), Y10
	VPSRLW $4, Y10, Y11
	VPAND Y15, Y10, Y10
	VPAND Y15, Y11, Y11
	VMOVDQU 112(SI), Y12
	VPSRLW $4, Y12, Y13
	VPAND Y15, Y12, Y12
	VPAND Y15, Y13, Y13
	// token 0: Σ_j sc_j·Σ q·q_y in eight int32 lanes of Y0
	MOVQ 0(BX), R9
	VPMADDUBSW 0(R9)(R14*1), Y6, Y0
	VPMADDWD 64(SP), Y0, Y0
	VPMADDUBSW 32(R9)(R14*1), Y7, Y4
	VPMADDWD 96(SP), Y4, Y4
	VPADDD Y4, Y0, Y0
	VPMADDUBSW 64(R9)(R14*1), Y8, Y5
	VPMADDWD 128(SP), Y5, Y5
	VPADDD Y5, Y0, Y0
	VPMADDUBSW 96(R9)(R14*1), Y9, Y4
	VPMADDWD 160(SP), Y4, Y4
	VPADDD Y4, Y0, Y0
	VPMADDUBSW 128(R9)(R14*1), Y10, Y5
	VPMADDWD 192(SP), Y5, Y5
	VPADDD Y5, Y0, Y0
	VPMADDUBSW 160(R9)(R14*1), Y11, Y4
	VPMADDWD 224(SP), Y4, Y4
	VPADDD Y4, Y0, Y0
	VPMADDUBSW 192(R9)(R14*1), Y12, Y5
	VPMADDWD 256(SP), Y5, Y5
	VPADDD Y5, Y0, Y0
	VPMADDUBSW 224(R9)(R14*1), Y13, Y4
	VPMADDWD 288(SP), Y4, Y4
	VPADDD Y4, Y0, Y0
	// token 1: Σ_j sc_j·Σ q·q_y in eight int32 lanes of Y1
	MOVQ 8(BX), R9
	VPMADDUBSW 0(R9)(R14*1), Y6, Y1
	VPMADDWD 64(SP), Y1, Y1
	VPMADDUBSW 32(R9)(R14*1), Y7, Y4
	VPMADDWD 96(SP), Y4, Y4
	VPADDD Y4, Y1, Y1
	VPMADDUBSW 64(R9)(R14*1), Y8, Y5
	VPMADDWD 128(SP), Y5, Y5
	VPADDD Y5, Y1, Y1
	VPMADDUBSW 96(R9)(R14*1), Y9, Y4
	VPMADDWD 160(SP), Y4, Y4
	VPADDD Y4, Y1, Y1
	VPMADDUBSW 128(R9)(R14*1), Y10, Y5
	VPMADDWD 192(SP), Y5, Y5
	VPADDD Y5, Y1, Y1
	VPMADDUBSW 160(R9)(R14*1), Y11, Y4
	VPMADDWD 224(SP), Y4, Y4
	VPADDD Y4, Y1, Y1
	VPMADDUBSW 192(R9)(R14*1), Y12, Y5
	VPMADDWD 256(SP), Y5, Y5
	VPADDD Y5, Y1, Y1
	VPMADDUBSW 224(R9)(R14*1), Y13, Y4
	VPMADDWD 288(SP), Y4, Y4
	VPADDD Y4, Y1, Y1
	// token 2: Σ_j sc_j·Σ q·q_y in eight int32 lanes of Y2
	MOVQ 16(BX), R9
	VPMADDUBSW 0(R9)(R14*1), Y6, Y2
	VPMADDWD 64(SP), Y2, Y2
	VPMADDUBSW 32(R9)(R14*1), Y7, Y4
	VPMADDWD 96(SP), Y4, Y4
	VPADDD Y4, Y2, Y2
	VPMADDUBSW 64(R9)(R14*1), Y8, Y5
	VPMADDWD 128(SP), Y5, Y5
	VPADDD Y5, Y2, Y2
	VPMADDUBSW 96(R9)(R14*1), Y9, Y4
	VPMADDWD 160(SP), Y4, Y4
	VPADDD Y4, Y2, Y2
	VPMADDUBSW 128(R9)(R14*1), Y10, Y5
	VPMADDWD 192(SP), Y5, Y5
	VPADDD Y5, Y2, Y2
	VPMADDUBSW 160(R9)(R14*1), Y11, Y4
	VPMADDWD 224(SP), Y4, Y4
	VPADDD Y4, Y2, Y2
	VPMADDUBSW 192(R9)(R14*1), Y12, Y5
	VPMADDWD 256(SP), Y5, Y5
	VPADDD Y5, Y2, Y2
	VPMADDUBSW 224(R9)(R14*1), Y13, Y4
	VPMADDWD 288(SP), Y4, Y4
	VPADDD Y4, Y2, Y2
	// token 3: Σ_j sc_j·Σ q·q_y in eight int32 lanes of Y3
	MOVQ 24(BX), R9
	VPMADDUBSW 0(R9)(R14*1), Y6, Y3
	VPMADDWD 64(SP), Y3, Y3
	VPMADDUBSW 32(R9)(R14*1), Y7, Y4
	VPMADDWD 96(SP), Y4, Y4
	VPADDD Y4, Y3, Y3
	VPMADDUBSW 64(R9)(R14*1), Y8, Y5
	VPMADDWD 128(SP), Y5, Y5
	VPADDD Y5, Y3, Y3
	VPMADDUBSW 96(R9)(R14*1), Y9, Y4
	VPMADDWD 160(SP), Y4, Y4
	VPADDD Y4, Y3, Y3
	VPMADDUBSW 128(R9)(R14*1), Y10, Y5
	VPMADDWD 192(SP), Y5, Y5
	VPADDD Y5, Y3, Y3
	VPMADDUBSW 160(R9)(R14*1), Y11, Y4
	VPMADDWD 224(SP), Y4, Y4
	VPADDD Y4, Y3, Y3
	VPMADDUBSW 192(R9)(R14*1), Y12, Y5
	VPMADDWD 256(SP), Y5, Y5
	VPADDD Y5, Y3, Y3
	VPMADDUBSW 224(R9)(R14*1), Y13, Y4
	VPMADDWD 288(SP), Y4, Y4
	VPADDD Y4, Y3, Y3
	// the four tokens' lanes summed: X0 = sumi of tokens 0-3
	VPHADDD Y1, Y0, Y0
	VPHADDD Y3, Y2, Y2
	VPHADDD Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	MOVQ 32(BX), R9 // token 0: Σ_j m_j·(q_y sum of sub-block j)
	VMOVDQU (R9)(R15*1), X1
	VPHADDW 16(R9)(R15*1), X1, X1
	VPMADDWD 32(SP), X1, X1
	MOVQ 40(BX), R9 // token 1: Σ_j m_j·(q_y sum of sub-block j)
	VMOVDQU (R9)(R15*1), X2
	VPHADDW 16(R9)(R15*1), X2, X2
	VPMADDWD 32(SP), X2, X2
	MOVQ 48(BX), R9 // token 2: Σ_j m_j·(q_y sum of sub-block j)
	VMOVDQU (R9)(R15*1), X3
	VPHADDW 16(R9)(R15*1), X3, X3
	VPMADDWD 32(SP), X3, X3
	MOVQ 56(BX), R9 // token 3: Σ_j m_j·(q_y sum of sub-block j)
	VMOVDQU (R9)(R15*1), X4
	VPHADDW 16(R9)(R15*1), X4, X4
	VPMADDWD 32(SP), X4, X4
	VPHADDD X2, X1, X1
	VPHADDD X4, X3, X3
	VPHADDD X3, X1, X1 // X1 = mins of tokens 0-3
	MOVQ 64(BX), R9 // the four tokens' d_y in X2
	VMOVSS (R9)(DX*1), X2
	MOVQ 72(BX), R9
	VINSERTPS $0x10, (R9)(DX*1), X2, X2
	MOVQ 80(BX), R9
	VINSERTPS $0x20, (R9)(DX*1), X2, X2
	MOVQ 88(BX), R9
	VINSERTPS $0x30, (R9)(DX*1), X2, X2
	VBROADCASTSS 48(SP), X3
	VMULPS X2, X3, X3 // d·d_y
	VCVTDQ2PS X0, X4
	VMULPS X4, X3, X3
	VADDPS X3, X14, X14
	VBROADCASTSS 52(SP), X3
	VMULPS X2, X3, X3 // dmin·d_y
	VCVTDQ2PS X1, X4
	VMULPS X4, X3, X3
	VSUBPS X3, X14, X14
	ADDQ $144, SI
	ADDQ $256, R14
	ADDQ $32, R15
	ADDQ $4, DX
	DECQ CX
	JNZ q4k4loop
	MOVQ out+24(FP), AX
	VMOVUPS X14, (AX)
	VZEROUPPER
	RET
