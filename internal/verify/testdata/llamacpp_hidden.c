/* hidden MODEL.gguf MODE IN OUT: for each line of IN (token ids), feed the
   tokens one per llama_decode (as a generating miner does) and write, for
   every position, the final-norm hidden state (embeddings on, pooling
   none) as float32 to OUT. MODE f32: F32 KV cache, flash attention off,
   1 thread; default: llama.cpp's context defaults (F16 KV cache, flash
   attention auto), 2 threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "llama.h"
static void quiet(enum ggml_log_level l, const char *t, void *u) {}
int main(int argc, char **argv) {
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model *m = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!m) { fprintf(stderr, "load failed\n"); return 1; }
    int f32 = strcmp(argv[2], "f32") == 0;
    FILE *in = fopen(argv[3], "r"), *out = fopen(argv[4], "wb");
    int dim = llama_model_n_embd(m);
    char line[65536];
    while (fgets(line, sizeof line, in)) {
        struct llama_context_params cp = llama_context_default_params();
        cp.n_ctx = 256; cp.n_batch = 256; cp.n_ubatch = 256;
        cp.embeddings = true; cp.pooling_type = LLAMA_POOLING_TYPE_NONE;
        if (f32) {
            cp.n_threads = 1; cp.n_threads_batch = 1;
            cp.type_k = GGML_TYPE_F32; cp.type_v = GGML_TYPE_F32;
            cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
        } else {
            cp.n_threads = 2; cp.n_threads_batch = 2;
        }
        struct llama_context *c = llama_init_from_model(m, cp);
        int n = 0; llama_token toks[512];
        for (char *p = strtok(line, " \n"); p; p = strtok(NULL, " \n")) toks[n++] = atoi(p);
        for (int i = 0; i < n; i++) {
            if (llama_decode(c, llama_batch_get_one(&toks[i], 1))) { fprintf(stderr, "decode failed\n"); return 1; }
            float *e = llama_get_embeddings_ith(c, -1);
            if (!e) { fprintf(stderr, "no embeddings\n"); return 1; }
            fwrite(e, sizeof(float), dim, out);
        }
        llama_free(c);
    }
    fclose(out);
    printf("dim %d\n", dim);
    return 0;
}
