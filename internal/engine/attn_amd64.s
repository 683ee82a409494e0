#include "textflag.h"

// AVX2 attention kernels (attn_amd64.go). Every output is the same float32
// sum, in the same order, as the Go twins in session.go compute it (a
// product rounded, then added; VMULPS and VADDPS, never a fused FMA), so
// results are bit for bit those of attnMixGo and attnScores
// (TestAttentionAVX2MatchesGo).

// func attnMixAVX2(xb *float32, att *float32, v *float32, stride int, n int, hs int)
// xb[i] = Σ_t att[t]·v[t·stride+i] over t = 0..n-1 in order, for i < hs
// (hs a multiple of 8, n ≥ 1): 32 elements per pass in four accumulators
// (att[t] broadcast once for them), then 8 at a time.
TEXT ·attnMixAVX2(SB), NOSPLIT, $0-48
	MOVQ xb+0(FP), DI
	MOVQ att+8(FP), SI
	MOVQ v+16(FP), R8
	MOVQ stride+24(FP), R9
	SHLQ $2, R9 // stride in bytes
	MOVQ n+32(FP), CX
	MOVQ hs+40(FP), DX
mix32:
	CMPQ DX, $32
	JLT mix8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ SI, R11
	MOVQ R8, R10
	MOVQ CX, R12
mix32t:
	VBROADCASTSS (R11), Y4
	VMULPS (R10), Y4, Y5
	VADDPS Y5, Y0, Y0
	VMULPS 32(R10), Y4, Y6
	VADDPS Y6, Y1, Y1
	VMULPS 64(R10), Y4, Y7
	VADDPS Y7, Y2, Y2
	VMULPS 96(R10), Y4, Y8
	VADDPS Y8, Y3, Y3
	ADDQ $4, R11
	ADDQ R9, R10
	DECQ R12
	JNZ mix32t
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	ADDQ $128, R8
	SUBQ $32, DX
	JMP mix32
mix8:
	CMPQ DX, $8
	JLT mixdone
	VXORPS Y0, Y0, Y0
	MOVQ SI, R11
	MOVQ R8, R10
	MOVQ CX, R12
mix8t:
	VBROADCASTSS (R11), Y4
	VMULPS (R10), Y4, Y5
	VADDPS Y5, Y0, Y0
	ADDQ $4, R11
	ADDQ R9, R10
	DECQ R12
	JNZ mix8t
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, R8
	SUBQ $8, DX
	JMP mix8
mixdone:
	VZEROUPPER
	RET

// func attnScores8AVX2(att *float32, qT *float32, k *float32, stride int, n int, hs int, scale float32)
// Eight queries at once (a prompt's tokens, one head): qT holds them
// transposed (qT[j·8+b] = q_b[j]), and att[t·8+b] = (Σ_j q_b[j]·k_t[j]) /
// scale for keys t = 0..n-1 (k_t at k[t·stride]), each sum taken over j in
// order as attnScores does. Four keys per pass, so that four independent
// sums hide the adds' latency; then one at a time.
TEXT ·attnScores8AVX2(SB), NOSPLIT, $0-52
	MOVQ att+0(FP), DI
	MOVQ qT+8(FP), SI
	MOVQ k+16(FP), R8
	MOVQ stride+24(FP), R9
	SHLQ $2, R9 // stride in bytes
	MOVQ n+32(FP), CX
	MOVQ hs+40(FP), DX
	VBROADCASTSS scale+48(FP), Y15
	LEAQ (R8)(R9*2), R13 // k_{t+2}
sc4:
	CMPQ CX, $4
	JLT sc1
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ SI, R11
	XORQ R10, R10 // j·4
	MOVQ DX, R12
sc4j:
	VMOVUPS (R11), Y4
	VBROADCASTSS (R8)(R10*1), Y5
	VMULPS Y5, Y4, Y5
	VADDPS Y5, Y0, Y0
	LEAQ (R8)(R9*1), AX
	VBROADCASTSS (AX)(R10*1), Y6
	VMULPS Y6, Y4, Y6
	VADDPS Y6, Y1, Y1
	VBROADCASTSS (R13)(R10*1), Y7
	VMULPS Y7, Y4, Y7
	VADDPS Y7, Y2, Y2
	LEAQ (R13)(R9*1), AX
	VBROADCASTSS (AX)(R10*1), Y8
	VMULPS Y8, Y4, Y8
	VADDPS Y8, Y3, Y3
	ADDQ $32, R11
	ADDQ $4, R10
	DECQ R12
	JNZ sc4j
	VDIVPS Y15, Y0, Y0
	VDIVPS Y15, Y1, Y1
	VDIVPS Y15, Y2, Y2
	VDIVPS Y15, Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	LEAQ (R8)(R9*4), R8
	LEAQ (R13)(R9*4), R13
	SUBQ $4, CX
	JMP sc4
sc1:
	CMPQ CX, $0
	JEQ scdone
	VXORPS Y0, Y0, Y0
	MOVQ SI, R11
	XORQ R10, R10
	MOVQ DX, R12
sc1j:
	VMOVUPS (R11), Y4
	VBROADCASTSS (R8)(R10*1), Y5
	VMULPS Y5, Y4, Y5
	VADDPS Y5, Y0, Y0
	ADDQ $32, R11
	ADDQ $4, R10
	DECQ R12
	JNZ sc1j
	VDIVPS Y15, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ R9, R8
	DECQ CX
	JMP sc1
scdone:
	VZEROUPPER
	RET
