// llamalite: the one public header of the engine. Opaque handles, plain C functions,
// error strings instead of aborts. Functions that can fail take (char *err, size_t errlen)
// and write a one-line message there.
#ifndef LLAMALITE_H
#define LLAMALITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t ll_token;
typedef struct ll_model ll_model;
typedef struct ll_vocab ll_vocab;
typedef struct ll_context ll_context;
typedef struct ll_sampler ll_sampler;

// ---- model --------------------------------------------------------------------------------
typedef struct {
    bool vocab_only;   // load the tokenizer only (vocab GGUFs have no weights)
    // When set, the weights are paged in at load (so the first decode does not pay for page
    // faults) and this is called on the loading thread as they are: bytes done of total.
    void (*progress)(void *ud, uint64_t done, uint64_t total);
    void *progress_ud;
    bool no_mmap;      // read the file into memory instead of mapping it (progress: bytes read)
    // Keep the weights as the file has them (zero-copy from the mapping). By default the
    // matrices the kernels in use have an interleaved layout for are repacked at load, and
    // their file pages given back (mapped files only).
    bool no_repack;
} ll_model_params;

ll_model_params ll_model_default_params(void);
ll_model *ll_model_load(const char *path, const ll_model_params *p, char *err, size_t errlen);
void ll_model_free(ll_model *m);

const ll_vocab *ll_model_get_vocab(const ll_model *m);
int ll_model_n_ctx_train(const ll_model *m);
int ll_model_n_embd(const ll_model *m);
int ll_model_n_layer(const ll_model *m);
uint64_t ll_model_n_params(const ll_model *m);
uint64_t ll_model_size_bytes(const ll_model *m);
// A short description such as "llama 260K F32"; owned by the model.
const char *ll_model_desc(const ll_model *m);
// A string metadata value (e.g. "tokenizer.chat_template"), NULL when absent; owned by the model.
const char *ll_model_meta_str(const ll_model *m, const char *key);

// ---- vocabulary and tokenizer -------------------------------------------------------------
int32_t ll_vocab_n_tokens(const ll_vocab *v);
ll_token ll_vocab_bos(const ll_vocab *v);   // -1 when the vocab has none
ll_token ll_vocab_eos(const ll_vocab *v);
ll_token ll_vocab_eot(const ll_vocab *v);
bool ll_vocab_is_eog(const ll_vocab *v, ll_token t); // end of generation: eos, eot, eom, ...
bool ll_vocab_is_control(const ll_vocab *v, ll_token t);
bool ll_vocab_add_bos(const ll_vocab *v);
bool ll_vocab_add_eos(const ll_vocab *v);
const char *ll_vocab_type_name(const ll_vocab *v); // "spm", "bpe"

// Tokenizes len bytes of text (need not be NUL-terminated nor valid UTF-8). add_special adds
// BOS/EOS as the vocab says; parse_special turns special-token text into control tokens.
// Returns the number of tokens; when that exceeds n_max, only n_max are written (call again
// with a bigger buffer). Returns -1 on error (e.g. out of memory).
int32_t ll_tokenize(const ll_vocab *v, const char *text, int32_t len, ll_token *out,
                    int32_t n_max, bool add_special, bool parse_special);
// The bytes a token stands for (SPM '▁' becomes ' ', byte tokens their byte). Control tokens
// give their text only when special is true. Returns the length, or -(needed) if size is short.
int32_t ll_token_to_piece(const ll_vocab *v, ll_token t, char *buf, int32_t size, bool special);
// The raw vocab string of a token (as stored in the GGUF), NUL-terminated.
const char *ll_token_get_text(const ll_vocab *v, ll_token t);

// Streaming detokenizer: holds back an incomplete UTF-8 sequence until it is complete, so
// what it returns is always valid UTF-8 (invalid bytes become U+FFFD).
typedef struct {
    char pending[8];
    int n_pending;
} ll_detok;
// Appends the printable bytes for token t to out (capacity cap), returns bytes written.
size_t ll_detok_push(ll_detok *d, const ll_vocab *v, ll_token t, bool special, char *out, size_t cap);
// Flushes what is left at the end of the stream (an incomplete sequence becomes U+FFFD).
size_t ll_detok_flush(ll_detok *d, char *out, size_t cap);

// ---- context (KV cache + scratch) ---------------------------------------------------------
// KV cache element types, llama-cli's -ctk/-ctv names (block formats as ggml stores them).
typedef enum {
    LL_CACHE_F16 = 0, LL_CACHE_F32 = 1, LL_CACHE_BF16, LL_CACHE_Q8_0, LL_CACHE_Q4_0, LL_CACHE_Q4_1,
    LL_CACHE_Q5_0, LL_CACHE_Q5_1, LL_CACHE_IQ4_NL, LL_CACHE_TYPE_COUNT
} ll_cache_type;
// Attention over the cache: fused (one pass with an online softmax, -fa) or scores then values.
// AUTO picks what is fastest for the cache types and the context (see engine/forward/attention.c).
// "f16", "q8_0", ... (llama-cli's names); "?" for an unknown value. From a name: false if unknown.
const char *ll_cache_type_name(ll_cache_type t);
bool ll_cache_type_from_name(const char *name, ll_cache_type *out);
typedef enum { LL_FLASH_ATTN_AUTO = 0, LL_FLASH_ATTN_ON, LL_FLASH_ATTN_OFF } ll_flash_attn;

typedef struct {
    int n_ctx;        // 0: the model's training context, capped at 4096
    int n_batch;      // tokens per forward chunk during prompt processing (default 512)
    int n_threads;    // 0: physical cores
    ll_cache_type type_k, type_v;
    bool logits_all;  // keep logits of every token of a decode (perplexity, speculative)
    ll_flash_attn flash_attn;
    bool swa_full;    // sliding-window layers keep the whole context too (default: their window)
} ll_context_params;

ll_context_params ll_context_default_params(void);
ll_context *ll_context_new(ll_model *m, const ll_context_params *p, char *err, size_t errlen);
void ll_context_free(ll_context *c);
int ll_n_ctx(const ll_context *c);
int ll_n_past(const ll_context *c);   // tokens currently in the KV cache
int ll_n_threads(const ll_context *c);
const ll_model *ll_context_model(const ll_context *c);

// Evaluates n tokens at positions n_past .. n_past+n-1 (in chunks of n_batch) and appends
// them to the KV cache. Returns 0, or -1 with err set (e.g. context full).
int ll_decode(ll_context *c, const ll_token *tokens, int n, char *err, size_t errlen);
// When set, ll_decode asks cb(ud) between batch chunks and (for prompts) between layers, and
// stops with err "interrupted" (and the cache as before the call) when it returns true, e.g.
// after Ctrl-C. cb may be called from the decoding thread only; NULL removes it.
void ll_set_abort_callback(ll_context *c, bool (*cb)(void *ud), void *ud);
// Mixture-of-experts models: over the last decode's tokens and layers, the smallest gap between
// the last expert chosen and the best one left out, relative to the largest router logit's
// magnitude (INFINITY for dense models). A tiny margin is a near tie in routing, which another
// engine's rounding may break the other way (golden tests allow their paths to part there).
float ll_get_route_margin(const ll_context *c);
// Logits (n_vocab floats) of the last token of the last decode.
float *ll_get_logits(ll_context *c);
// Logits of token i of the last decode; needs logits_all (else NULL unless i is the last).
float *ll_get_logits_ith(ll_context *c, int i);

// Turns logits_all on or off for the next decodes (e.g. off for a prompt, on to verify a
// speculative draft).
void ll_set_logits_all(ll_context *c, bool on);
// Batch-invariant decodes: every token of a multi-token decode gets bitwise the logits a
// one-token decode would give (one-token kernels and attention sums; the weights are still
// read once per decode). Speculative verification uses it so that greedy output equals
// decoding without a draft. Slower than the batched kernels for long prompts.
void ll_set_exact_batches(ll_context *c, bool on);

void ll_kv_clear(ll_context *c);
// Forgets every cached position >= n_keep (rollback). Sliding-window layers hold only the rows
// their window needs; a rollback further back than they hold (more than a batch before the
// last decode) forgets everything: ll_n_past says where the cache stands.
void ll_kv_truncate(ll_context *c, int n_keep);
// Removes cached positions [n_keep, n_keep + n_discard) and moves the rest down, re-rotating
// the cached keys to their new positions (context shift).
void ll_kv_shift(ll_context *c, int n_keep, int n_discard);

// ---- sessions (engine/context/session.c) ---------------------------------------------------
// Saves the cache rows of positions [0, n_tokens) with the tokens they hold and an optional blob
// of the caller's (n_extra bytes, at most 64 MiB) to path (written beside it and renamed over it).
// Returns 0, or -1 with err set.
int ll_session_save(const ll_context *c, const char *path, const ll_token *tokens, int n_tokens,
                    const void *extra, size_t n_extra, char *err, size_t errlen);
// Loads a session file into the cache (n_past becomes its token count) after checking it against
// the context: magic, version, model identity, cache shape and types, sizes against the file's
// length, token ids, checksum. *tokens (and *extra, NUL-terminated, when extra is not NULL) are
// malloc'd for the caller. Returns 0, or -1 with err set to one line saying why; the cache is
// then empty.
int ll_session_load(ll_context *c, const char *path, ll_token **tokens, int *n_tokens, void **extra,
                    size_t *n_extra, char *err, size_t errlen);

// Timings accumulated since the context was made (or reset).
typedef struct {
    double t_load_ms;
    double t_prompt_ms; int n_prompt;  // decodes of more than one token
    double t_gen_ms; int n_gen;        // single-token decodes
} ll_timings;
ll_timings ll_get_timings(const ll_context *c);
void ll_reset_timings(ll_context *c);

// ---- LoRA adapters ------------------------------------------------------------------------
// A GGUF LoRA adapter (general.type "adapter", adapter.type "lora", adapter.lora.alpha, tensor
// pairs "<base>.lora_a" / ".lora_b" in F32, F16, BF16 or Q8_0) for the attention, feed-forward,
// output and token embedding matrices of a model. At run time each adapted matmul becomes
//   y = W·x + sum over attached adapters of scale * (alpha / rank) * B·(A·x);
// the model's weights are never modified. Tensors ending in "_norm.weight" are ignored (as
// llama.cpp does).
typedef struct ll_adapter ll_adapter;

// Loads and validates an adapter for m. On failure returns NULL and writes one line to err:
// not an adapter, wrong architecture, a tensor the model lacks, a shape mismatch (naming the
// tensor and both shapes), lora_a without lora_b (or the reverse), an unsupported type.
// The adapter refers to m: free it (after the contexts using it) before the model.
ll_adapter *ll_adapter_load(const ll_model *m, const char *path, char *err, size_t errlen);
void ll_adapter_free(ll_adapter *a);
const char *ll_adapter_path(const ll_adapter *a);
float ll_adapter_alpha(const ll_adapter *a);   // 0: none (the scale is then used as is)
int ll_adapter_n_weights(const ll_adapter *a); // adapted weights (A/B pairs)
int ll_adapter_rank(const ll_adapter *a);      // largest rank of its pairs

// Attaches a to c with a scale (0 leaves the output exactly the base model's), or changes its
// scale when a is already attached. Adapters stack, each with its own scale; the same file
// loaded twice counts twice. The KV cache keeps what earlier adapters computed: clear it and
// re-evaluate for results consistent with the new set. Returns 0, or -1 with err set (an
// adapter of another model, a non-finite scale, out of memory).
int ll_context_set_adapter(ll_context *c, ll_adapter *a, float scale, char *err, size_t errlen);
// Detaches a; returns false when it was not attached.
bool ll_context_remove_adapter(ll_context *c, const ll_adapter *a);
void ll_context_clear_adapters(ll_context *c);
// Attached adapters in the order they were attached: adapter i (NULL when out of range) and
// its scale.
int ll_context_n_adapters(const ll_context *c);
ll_adapter *ll_context_adapter(const ll_context *c, int i, float *scale);

// Writes a copy of m's GGUF to out_path with the adapters merged into the weights:
// W' = W + sum scales[i] * (alpha / rank) * B·A, each merged tensor re-quantized to its own type,
// or to type (a name such as "Q8_0", "F16"; NULL: keep). Metadata and every other tensor are
// copied unchanged. n_threads 0: physical cores. Returns the number of merged tensors, or -1
// with err set.
int ll_lora_export(const ll_model *m, ll_adapter *const *adapters, const float *scales, int n,
                   const char *type, const char *out_path, int n_threads, char *err, size_t errlen);

// ---- sampling -----------------------------------------------------------------------------
#define LL_DEFAULT_SEED 0xFFFFFFFFu // means: pick a random seed
#define LL_MAX_DRY_BREAKERS 16

typedef struct {
    ll_token token;
    float bias;                // -INFINITY forbids the token
} ll_logit_bias;

typedef struct {
    float temp;            // <= 0: greedy
    int32_t top_k;         // <= 0: off
    float top_p;           // 1: off
    float min_p;           // 0: off
    float typical_p;       // 1: off
    int32_t repeat_last_n; // window of the penalties (0 off, -1 the whole history)
    float repeat_penalty;  // 1: off
    float freq_penalty;    // 0: off
    float presence_penalty;// 0: off
    uint32_t seed;

    // llama.cpp's further samplers, with its defaults (all off).
    float dry_multiplier;      // DRY: a token extending a repeat of L > allowed_length tokens
    float dry_base;            // loses multiplier * base^(L - allowed_length) (0: off; 1.75)
    int32_t dry_allowed_length;// (2)
    int32_t dry_penalty_last_n;// tokens scanned for repeats (-1: the whole history, 0: off)
    const char *dry_breakers[LL_MAX_DRY_BREAKERS]; // repeats do not span these strings; NULL
                               // ends the list (default "\n", ":", "\"", "*"); needs vocab
    const ll_vocab *vocab;     // for the DRY sequence breakers (NULL: no breakers)
    float xtc_probability;     // XTC: with this probability, remove every token at or above
    float xtc_threshold;       // the threshold but the least likely of them (0: off; 0.1)
    float top_n_sigma;         // < 0: off; else llama.cpp's chain top-k, temperature, then keep
                               // logits within top_n_sigma standard deviations of the largest
    int32_t mirostat;          // 0 off, 1 Mirostat, 2 Mirostat 2.0 (chain: temperature, mirostat)
    float mirostat_tau;        // target surprise (5.0)
    float mirostat_eta;        // learning rate (0.1)
    const ll_logit_bias *logit_bias; // added to the logits first (copied by ll_sampler_new)
    int32_t n_logit_bias;
    char order[16];            // the chain's order in llama.cpp's letters: e penalties, d DRY,
                               // k top-k, y typical, p top-p, m min-p, x XTC, t temperature;
                               // "" = "edkypmxt"
} ll_sampler_params;

// llama-cli's defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05, typical 1, last-n 64,
// repeat 1.0, frequency 0, presence 0, random seed, DRY/XTC/top-n-sigma/mirostat off. Applied
// in llama-cli's order: penalties, DRY, top-k, typical, top-p, min-p, XTC, temperature, then a
// draw (or as order says).
ll_sampler_params ll_sampler_default_params(void);
ll_sampler *ll_sampler_new(const ll_sampler_params *p, int32_t n_vocab);
void ll_sampler_free(ll_sampler *s);
// Picks a token from logits (not modified). Does not record it: call ll_sampler_accept.
ll_token ll_sampler_sample(ll_sampler *s, const float *logits);
void ll_sampler_accept(ll_sampler *s, ll_token t); // adds t to the penalty history
void ll_sampler_reset(ll_sampler *s);              // clears history; keeps the RNG state
// The probability distribution the sampler would draw from (after every filter), written
// to probs[n_vocab] (zeros for removed tokens). For tests and speculative decoding. XTC's
// coin is tossed (with the sampler's RNG) and Mirostat's state is not advanced.
void ll_sampler_probs(ll_sampler *s, const float *logits, float *probs);
uint32_t ll_sampler_seed(const ll_sampler *s);
// Restarts the random stream from seed (LL_DEFAULT_SEED: a random one).
void ll_sampler_set_seed(ll_sampler *s, uint32_t seed);
// dst continues src's random stream (seed and state), e.g. after a settings change.
void ll_sampler_copy_rng(ll_sampler *dst, const ll_sampler *src);

// ---- grammars (GBNF) and JSON Schema ------------------------------------------------------
typedef struct ll_grammar ll_grammar;

// Parses a GBNF grammar (llama.cpp's dialect, start rule "root"). On error returns NULL and
// writes "LINE:COL: reason" to err (syntax, undefined rule, missing root, left recursion).
ll_grammar *ll_grammar_parse(const char *gbnf, char *err, size_t errlen);
void ll_grammar_free(ll_grammar *g);
// Whether the whole of s[0..n) is a sentence of the grammar.
bool ll_grammar_match(const ll_grammar *g, const char *s, size_t n);
// The same, saying when it cannot tell: 1 a sentence, 0 not, -1 out of memory or the grammar
// too ambiguous (more partial parses at once than the matcher keeps, GR_MAX_STACKS = 65536).
int ll_grammar_match_status(const ll_grammar *g, const char *s, size_t n);

// Translates a JSON Schema to GBNF. Returns a malloc'd NUL-terminated grammar (free()), or
// NULL with err set.
char *ll_json_schema_to_gbnf(const char *schema, char *err, size_t errlen);
// The same, and *warnings (when warnings is not NULL) gets a malloc'd text of one line per
// keyword the grammar does not enforce ("PATH: 'uniqueItems' is not enforced (ignored)"), or
// NULL when every keyword is enforced.
char *ll_json_schema_to_gbnf_warn(const char *schema, char **warnings, char *err, size_t errlen);

// Constrains the sampler to the grammar (copied): only tokens whose bytes keep it matchable,
// end-of-generation tokens only where it can end. Attach after feeding the prompt to
// ll_sampler_accept; attaching again restarts the grammar; g == NULL removes it.
// Returns 0, or -1 with err set (out of memory).
int ll_sampler_set_grammar(ll_sampler *s, const ll_vocab *v, const ll_grammar *g,
                           char *err, size_t errlen);
typedef enum {
    LL_GRAMMAR_NONE = 0,  // no grammar attached
    LL_GRAMMAR_MORE,      // the output so far is incomplete: it needs more
    LL_GRAMMAR_CAN_END,   // complete, and may continue
    LL_GRAMMAR_DONE,      // complete and cannot continue: stop generating
    LL_GRAMMAR_FAILED,    // a token the grammar rejects was accepted
} ll_grammar_status;
ll_grammar_status ll_sampler_grammar_status(const ll_sampler *s);
// Shorthand: the grammar is complete and nothing more can follow (or an end token came).
bool ll_sampler_grammar_done(const ll_sampler *s);
// Why the last ll_sampler_sample found no token the grammar allows, as one line: the grammar
// allows none, or it cannot tell in bounded time and memory (too ambiguous), or out of memory.
const char *ll_sampler_grammar_why(const ll_sampler *s);
// Tells the grammar how many tokens may still be sampled (this one included; -1: no limit,
// the default). While completing in time is possible, only tokens after which the grammar can
// still complete within the rest are allowed, so output limited by -n or the context ends
// complete instead of cut off. Call before each ll_sampler_sample.
void ll_sampler_grammar_set_budget(ll_sampler *s, int32_t n_tokens);

// ---- speculative decoding -------------------------------------------------------------------
// A cheap drafter proposes the next tokens; the target evaluates them all in one decode and
// keeps the longest prefix its own sampler agrees with (greedy), or accepts each with
// probability min(1, p_target / p_draft) and resamples a rejection from max(0, p_target -
// p_draft) (temperature > 0): either way the output has exactly the target's distribution.
// The drafter is a small model with the same vocabulary, or (prompt lookup) the continuation
// of the most recent earlier occurrence of the last n tokens.
typedef struct ll_spec ll_spec;

typedef struct {
    int n_max;    // most tokens drafted per step (default 16)
    int n_min;    // a shorter draft is dropped: the step makes one token the plain way (0)
    float p_min;  // draft model: stop drafting after a token whose probability (softmax of the
                  // draft's logits) is below this (0.75)
    float margin_min; // draft model: stop drafting after a token whose logit leads the runner-up's
                      // by less than this (0: off). A draft close to the target (its first layers)
                      // disagrees with it where its own top two nearly tie, also when its
                      // distributions are too flat for p_min to tell.
    int ngram;    // prompt lookup (no draft model): length of the matched suffix (3)
    bool no_eog;  // never choose an end-of-generation token (--ignore-eos)
    bool full_draft_head; // the draft's logits from its own head (else, when that head is big:
                          // from a 4-bit copy, the best rows recomputed exactly; draft_head.c)
    bool exact;   // verify with one-token arithmetic (ll_set_exact_batches), so greedy output is
                  // byte-identical to plain decoding (default). Off: the batched kernels, faster
                  // for long drafts; the output keeps the target's distribution, but greedy
                  // text can differ from plain decoding where rounding flips a near tie.
} ll_spec_params;

ll_spec_params ll_spec_default_params(void);

// Whether draft can draft for target: same tokenizer type, same BOS/EOS/EOT and add-BOS/EOS
// rules, vocabulary sizes within 128 and the same token texts on the shared ids. Returns 0,
// or -1 with err naming the first difference.
int ll_spec_check_vocab(const ll_model *target, const ll_model *draft, char *err, size_t errlen);

// target: the target's context; draft: the draft model's context (same n_ctx or larger), or
// NULL for prompt lookup. Both caches must be empty; the ll_spec drives them from now on.
ll_spec *ll_spec_new(ll_context *target, ll_context *draft, const ll_spec_params *p,
                     char *err, size_t errlen);
void ll_spec_free(ll_spec *s);

// Appends tokens (the prompt, a new turn) to the committed sequence and evaluates all but the
// last one in both contexts (the last is evaluated with the next draft). Returns 0 or -1.
int ll_spec_feed(ll_spec *s, const ll_token *toks, int n, char *err, size_t errlen);

// One step: draft, verify in one target decode, commit. smp is the target's sampler; dsmp
// (NULL with prompt lookup) the draft's: made with the same parameters, fed the same prompt,
// with the same grammar; all random draws come from smp. budget: tokens that may still be
// generated, for the grammar's completion guard (-1: no limit). Writes 1..n_out committed
// tokens to out (both samplers have accepted them) and returns how many; stops early after
// an end-of-generation token or when the grammar is done. -1 with err set on failure (e.g.
// the grammar allows no token, or the context is full: call ll_spec_shift first).
int ll_spec_step(ll_spec *s, ll_sampler *smp, ll_sampler *dsmp, int budget, ll_token *out,
                 int n_out, char *err, size_t errlen);

// Committed tokens (prompt included). The target's cache holds all but the last one, so a
// step needs ll_spec_n_past(s) <= n_ctx.
int ll_spec_n_past(const ll_spec *s);
const ll_token *ll_spec_tokens(const ll_spec *s);
// Context shift of both caches and the committed tokens (as ll_kv_shift).
void ll_spec_shift(ll_spec *s, int n_keep, int n_discard);
// Forgets committed tokens from n_keep on (e.g. a reply cut by a stop string). The samplers
// are not rolled back.
void ll_spec_rewind(ll_spec *s, int n_keep);
// The caller brought the target's cache to toks[0..n) itself with ll_decode (e.g. a chat
// turn's new tokens, decoded as plain generation decodes them; the last logits current): they
// become the committed tokens. The draft's cache keeps its common prefix with them and catches
// up on the next step. Returns 0, or -1 with err set (the target's cache does not hold n).
int ll_spec_sync(ll_spec *s, const ll_token *toks, int n, char *err, size_t errlen);

typedef struct {
    int64_t n_steps;     // target decodes made by ll_spec_step
    int64_t n_drafted;   // drafted tokens sent to the target
    int64_t n_accepted;  // drafted tokens it accepted
    int64_t n_tokens;    // committed tokens
    double t_draft_ms, t_verify_ms;
    int n_shared_layers; // the draft is the target's first layers, byte for byte: the target
                         // takes them from the draft instead of evaluating them again
    bool draft_head_copy; // the draft's logits come from a 4-bit copy of its head (best rows exact)
} ll_spec_stats;
ll_spec_stats ll_spec_get_stats(const ll_spec *s);

// ---- chat templates -------------------------------------------------------------------------
// Built-in renderers for the common chat template families (no Jinja interpreter): "chatml",
// "qwen2", "llama2", "llama3", "llama3.1", "mistral" (v3-tekken/Nemo), "mistral-v3",
// "mistral-v1", "mistral-v0", "mistral-v7", "zephyr", "gemma", "phi3", "phi4", "deepseek",
// "deepseek-r1", "command-r".
typedef struct {
    const char *role;     // "system", "user", "assistant"
    const char *content;
} ll_chat_msg;

// A byte range of a rendered prompt.
typedef struct {
    size_t off, len;
} ll_chat_span;

// The family of a template: tmpl is a built-in name (returned as is) or the Jinja text of
// tokenizer.chat_template, recognised by its content. NULL when unknown.
const char *ll_chat_detect(const char *tmpl);
// The built-in names, NULL-terminated.
const char *const *ll_chat_template_names(void);
// Renders msgs with tmpl (a name or Jinja text, as for ll_chat_detect). add_ass appends the
// start of an assistant turn. bos/eos: what the template's bos_token/eos_token are (the
// model's token texts; NULL: the family's usual ones). On success returns 0 and sets *out
// (malloc'd, NUL-terminated); if spans is not NULL, *spans (malloc'd) / *n_spans are the byte
// ranges of *out that came from message contents, which callers tokenize without parsing
// special tokens. Returns -1 when the template is unknown, -2 when out of memory.
int ll_chat_render(const char *tmpl, const ll_chat_msg *msgs, size_t n, bool add_ass,
                   const char *bos, const char *eos, char **out, ll_chat_span **spans,
                   size_t *n_spans);

// Jinja chat templates: the model's own tokenizer.chat_template rendered as Hugging Face
// transformers renders it (Jinja2 with trim_blocks/lstrip_blocks, its tojson, raise_exception,
// strftime_now; SOURCE_DATE_EPOCH, when set, is "now"). Parsed once, rendered per turn.
typedef struct ll_chat_jinja ll_chat_jinja;
// NULL with "line L, column C: problem" in err.
ll_chat_jinja *ll_chat_jinja_parse(const char *tmpl, char *err, size_t errlen);
void ll_chat_jinja_free(ll_chat_jinja *t);
typedef struct {
    bool add_generation_prompt;
    const char *bos_token, *eos_token;   // NULL: ""
    const char *extra_json;              // NULL, or a JSON object of further variables
                                         // (e.g. {"enable_thinking": false})
} ll_chat_jinja_vars;
// conversation_json: a JSON array of messages ({"role", "content", ...}), or an object with
// "messages" and optionally "tools". Returns 0 with *out (malloc'd, NUL-terminated), or -1 with
// one line in err ("line L, column C: ..." for template errors).
int ll_chat_jinja_render(const ll_chat_jinja *t, const char *conversation_json, const ll_chat_jinja_vars *vars,
                         char **out, char *err, size_t errlen);

// ---- GGUF inspection (llamalite info) -----------------------------------------------------
typedef struct ll_gguf ll_gguf;

// Opens and fully validates any GGUF file (model, vocab, adapter). On failure returns NULL
// and writes "PATH: problem" (one line) to err.
ll_gguf *ll_gguf_open(const char *path, char *err, size_t errlen);
void ll_gguf_close(ll_gguf *g);
uint32_t ll_gguf_version(const ll_gguf *g);
size_t ll_gguf_alignment(const ll_gguf *g);
uint64_t ll_gguf_file_size(const ll_gguf *g);
int64_t ll_gguf_n_kv(const ll_gguf *g);
const char *ll_gguf_key(const ll_gguf *g, int64_t i); // raw bytes of the key, NUL-terminated
// Value of key i for people, malloc'd (free()): numbers exactly, bool true/false, strings
// quoted with C escapes and cut after max_str bytes with "..." (0: whole), arrays as
// "[a, b, c, ... N items]" with at most max_items elements shown (0: all).
char *ll_gguf_kv_format(const ll_gguf *g, int64_t i, size_t max_items, size_t max_str);
// Type of key i for people: "u8", "i32", "f64", "bool", "str", ..., arrays as "arr[str]",
// "arr[f32]", "arr[arr]" (nested). Static string; "?" when i is out of range.
const char *ll_gguf_kv_type(const ll_gguf *g, int64_t i);

typedef struct {
    const char *name;     // raw bytes, NUL-terminated
    const char *type;     // "Q4_K", "F32", ...
    uint32_t n_dims;
    int64_t ne[4];        // ggml order: ne[0] is the row length; unused dims are 1
    uint64_t n_elements;
    uint64_t offset;      // of the data, relative to the data section
    uint64_t size;        // bytes
} ll_gguf_tensor_info;
int64_t ll_gguf_n_tensors(const ll_gguf *g);
bool ll_gguf_tensor(const ll_gguf *g, int64_t i, ll_gguf_tensor_info *out);
// The hyperparameters the engine reads from a model file of an architecture it runs, one
// "name = value" line each, malloc'd (free()); NULL with err set otherwise.
char *ll_gguf_hparams(const ll_gguf *g, char *err, size_t errlen);

// ---- quantization and importance matrices -------------------------------------------------
// An importance matrix: for every weight matrix, the mean over tokens of each input column's
// squared activation. Files use llama.cpp's imatrix.dat format (so they move between tools).
typedef struct ll_imatrix ll_imatrix;

ll_imatrix *ll_imatrix_new(void);
// Loads an imatrix.dat (validated: sizes, finite non-negative values). NULL with err set.
ll_imatrix *ll_imatrix_load(const char *path, char *err, size_t errlen);
// Writes every entry that has data. Returns 0, or -1 with err set.
int ll_imatrix_save(const ll_imatrix *im, const char *path, char *err, size_t errlen);
void ll_imatrix_free(ll_imatrix *im); // detaches it from its context first
int ll_imatrix_n_entries(const ll_imatrix *im);
// Name of entry i (NULL when out of range), with its matmul call count and column count.
const char *ll_imatrix_entry(const ll_imatrix *im, int i, int *ncall, int *nval);
// The mean squared activations of a weight ("blk.0.attn_q.weight"), nval floats owned by im
// (valid until it changes); NULL when absent.
const float *ll_imatrix_get(const ll_imatrix *im, const char *name, int *nval);
int ll_imatrix_n_chunks(const ll_imatrix *im);
const char *ll_imatrix_dataset(const ll_imatrix *im); // "" when unknown
void ll_imatrix_set_info(ll_imatrix *im, int n_chunks, const char *dataset);
// Collects from every later decode of c of at least 16 tokens: the input of each layer matmul
// (and of a separate output head when process_output), as llama.cpp's imatrix tool does. A stack
// of experts is collected from every decode: n_expert x n_in values, expert e's columns from
// e * n_in, each averaged over the tokens that chose it.
// c == NULL detaches. Returns 0, or -1 when c already has a collector.
int ll_imatrix_attach(ll_imatrix *im, ll_context *c, bool process_output);

typedef struct {
    const char *type;           // "Q4_K_M", "Q8_0", "F16", ... (ll_quantize_type_names);
                                // ignored with a target (the planner chooses every type)
    int n_threads;              // 0: physical cores
    const ll_imatrix *imatrix;  // NULL: no importance weighting
    const char *imatrix_file;   // recorded in the metadata (quantize.imatrix.file); may be NULL
    bool pure;                  // every tensor the base type (no mixture)
    bool leave_output;          // copy output.weight as it is
    bool allow_requantize;      // accept already-quantized input (dequantized first)
    const char *output_type;    // type of output.weight (a tensor type name); NULL: the mixture's
    const char *token_embd_type;// type of token_embd.weight; NULL: the mixture's
    double target_bpw;          // > 0: choose the types to fit this many bits per weight
    uint64_t target_bytes;      // > 0: ... to fit this many bytes of tensor data
    // Called on the calling thread after each tensor: elements done of total.
    void (*progress)(void *ud, uint64_t done, uint64_t total);
    void *progress_ud;
} ll_quantize_params;

typedef struct {
    const char *name;
    const char *type_in, *type_out;
    uint32_t n_dims;
    int64_t ne[4];
    uint64_t n_elements, size_in, size_out; // bytes
    bool fallback;              // the rows did not fit the mixture's type: a substitute was used
} ll_quantize_tensor;

typedef struct {
    int ftype;                  // general.file_type written (llama.cpp's LLAMA_FTYPE numbers)
    int n_tensors;
    ll_quantize_tensor *tensors;// in file order
    uint64_t n_elements, size_in, size_out; // tensor data, bytes
    int n_fallback;
    double t_ms;
} ll_quantize_stats;

ll_quantize_params ll_quantize_default_params(void);
// The TYPE names `quantize` accepts, NULL-terminated.
const char *const *ll_quantize_type_names(void);
// Converts the GGUF at in_path to out_path: metadata copied (general.file_type and
// general.quantization_version set), each weight matrix converted to the type the mixture
// rules (or the target planner) choose, everything else copied. stats (may be NULL) is filled
// on success; free it with ll_quantize_stats_free. Returns 0, or -1 with err set.
int ll_model_quantize(const char *in_path, const char *out_path, const ll_quantize_params *p,
                      ll_quantize_stats *stats, char *err, size_t errlen);
void ll_quantize_stats_free(ll_quantize_stats *s);

// ---- writing output files ---------------------------------------------------------------------
// A failed write never costs what was at the path before. A regular file (or a new path) is
// written to a temporary file beside it, which replaces it only when everything was written;
// a symlink to a regular file keeps the link and replaces the file it points to. A device,
// FIFO or socket (/dev/null, /dev/full, a pipe) is written in place and never removed.
typedef struct ll_outfile ll_outfile;
// NULL with err set ("PATH: reason") when the file cannot be created.
ll_outfile *ll_outfile_open(const char *path, char *err, size_t errlen);
FILE *ll_outfile_stream(ll_outfile *o);
// keep: flushes, closes and puts the file in place; false with err set when any write, the
// flush or the close failed (the old file, if any, is untouched). !keep: drops what was
// written (the caller already has its own error); returns false. Frees o either way.
bool ll_outfile_close(ll_outfile *o, bool keep, char *err, size_t errlen);

// ---- diagnostics ----------------------------------------------------------------------------
// Runs ggml-lite's kernel micro-benchmark (dot products and matmuls per type) with n_threads
// (0: physical cores), printing a table to out. Returns 0, or -1 on failure.
int ll_bench_kernels(int n_threads, FILE *out);
// Generation's memory traffic on a mixture-of-experts model (bench --moe-bound): decodes
// tokens[0..n) one at a time (after what the cache holds), recording each layer's chosen
// experts, then replays exactly the weight reads those decodes made, on the context's threads
// with nothing computed: the fastest a decode reading those bytes can go here, experts reused
// from the cache included. Returns 0, or -1 with err set (not a MoE model, n < 2, a decode
// failed, out of memory).
typedef struct {
    int n_tokens;
    double bytes_per_token;        // dense tensors whole plus the chosen experts' matrices
    double expert_bytes_per_token; // the chosen experts' part
    double reused;                 // share of a token's expert bytes the previous token chose too
    double replay_s_per_token;     // reading those bytes, token after token (best of 3 passes)
    double stream_bytes_per_s;     // the threads reading a buffer larger than the caches
} ll_moe_traffic;
int ll_moe_traffic_measure(ll_context *c, const ll_token *tokens, int n, ll_moe_traffic *out, char *err,
                           size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
