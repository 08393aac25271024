// Tokenizer edge cases: special-token parsing, BOS, invalid UTF-8 (ids the reference gives,
// recorded from llama.cpp's llama-tokenize), the streaming detokenizer, and the pre-tokenizer
// splits of every supported tokenizer.ggml.pre family (expected pieces derived by hand from the
// reference regexes). The splitter and detokenizer parts run without ../shared; so does the
// end-of-generation set of a crafted gpt-oss (harmony) vocabulary.
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"
#include "engine/vocab/pretokenize.h"
#include "engine/vocab/unicode.h"
#include "tests/gguf_badfiles.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

// ---- pre-tokenizer splits ------------------------------------------------------------------

// Splits text with pre-tokenizer `pre` and compares with the expected pieces (NULL-terminated).
static void check_split(const char *pre, const char *text, const char *const *want) {
    int id = pt_find(pre);
    CHECK(id >= 0, "pre-tokenizer '%s' not found", pre);
    if (id < 0) return;
    size_t n;
    uint32_t *cpts = ll_utf8_to_cpts(text, strlen(text), &n);
    pt_words w = {0};
    CHECK(cpts && pt_split(id, cpts, n, &w), "%s: split failed", pre);
    size_t off = 0, k = 0;
    for (; k < w.n; k++) {
        char piece[256];
        size_t o = 0;
        for (size_t j = 0; j < w.len[k] && o + 4 < sizeof piece; j++) o += (size_t)ll_utf8_encode(cpts[off + j], piece + o);
        piece[o] = 0;
        off += w.len[k];
        CHECK(want[k] && strcmp(piece, want[k]) == 0, "%s '%s': piece %zu is '%s', want '%s'", pre, text, k,
              piece, want[k] ? want[k] : "(none)");
        if (!want[k]) break;
    }
    CHECK(k == w.n && !want[k], "%s '%s': %zu pieces", pre, text, w.n);
    CHECK(off <= n, "%s: pieces longer than the text", pre);
    free(w.len);
    free(cpts);
}

#define SPLIT(pre, text, ...) check_split(pre, text, (const char *const[]){__VA_ARGS__, NULL})

static void check_splitters(void) {
    // gpt-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    SPLIT("gpt-2", "Hello world's  123abc\n\n x", "Hello", " world", "'s", " ", " 123", "abc", "\n\n", " x");
    SPLIT("gpt-2", "I'M ok?! ", "I", "'", "M", " ok", "?!", " ");
    SPLIT("mpt", "x  ", "x", "  ");
    // llama3: case-insensitive contractions, letters with one leading non-letter, digits by 3,
    // newlines kept with the whitespace before them.
    SPLIT("llama-bpe", "Hello world's  123456abc\n\n x", "Hello", " world", "'s", " ", " ", "123", "456", "abc",
          "\n\n", " x");
    SPLIT("llama3", "I'M (ok)\r\n  \n", "I", "'M", " (", "ok", ")\r\n", "  \n");
    SPLIT("llama-bpe", "1234567", "123", "456", "7");
    // qwen2: the llama3 expression with single digits.
    SPLIT("qwen2", "ab 1234", "ab", " ", "1", "2", "3", "4");
    // starcoder family: every digit alone first, then gpt-2.
    SPLIT("starcoder", "abc 123", "abc", " ", "1", "2", "3");
    SPLIT("command-r", "x1", "x", "1");
    // default: punctuation runs first, gpt-2, number runs, then ASCII digits by three.
    SPLIT("default", "a+b=12345!", "a", "+", "b", "=", "123", "45", "!");
    // falcon: punctuation (with `) first, gpt-2, then [0-9]{3}.
    SPLIT("falcon", "x`y 12345", "x", "`", "y", " ", "123", "45");
    // deepseek-llm: [\r\n], \s?letters, \s?punctuation, \s+$, CJK runs, \p{N}+.
    SPLIT("deepseek-llm", "Hello, 世界!\n", "Hello", ",", " ", "世界", "!", "\n");
    SPLIT("deepseek-llm", "ab  ", "ab", "  ");
    // deepseek-coder: [\r\n], \s?\p{L}+, \s?\p{P}+, CJK runs, \p{N}.
    SPLIT("deepseek-coder", "x 12.5", "x", " ", "1", "2", ".", "5");
    // poro/bloom: ` ?[^(\s|.,!?…。，、।۔،)]+`
    SPLIT("bloom", "ab cd. ef", "ab", " cd", ".", " ef");
    // tekken: words split before an upper-case letter that follows lower case ("HelloWorld").
    SPLIT("tekken", "HelloWorld ABCdef x/\n", "Hello", "World", " ABCdef", " x", "/\n");
    // non-ASCII whitespace is \s, non-ASCII letters are \p{L}
    SPLIT("gpt-2", "\xc3\xa9t\xc3\xa9\xc2\xa0x", "\xc3\xa9t\xc3\xa9", "\xc2\xa0", "x");
    CHECK(pt_find("no-such-pre") < 0, "unknown pre-tokenizer accepted");
    CHECK(pt_ignore_merges(pt_find("llama-bpe")) && !pt_ignore_merges(pt_find("dbrx")),
          "ignore_merges only for the llama3 names");
}

// ---- UTF-8 helpers ---------------------------------------------------------------------------

static void check_utf8(void) {
    size_t used;
    CHECK(ll_utf8_decode("\xc3\xa9", 2, &used) == 0xE9 && used == 2, "decode é");
    CHECK(ll_utf8_decode("\xc3", 1, &used) == 0xFFFD && used == 1, "truncated sequence");
    CHECK(ll_utf8_decode("\x80", 1, &used) == 0xFFFD && used == 1, "lone continuation byte");
    CHECK(ll_utf8_decode("\xc0\x80", 2, &used) == 0 && used == 2, "overlong forms are accepted (as the reference)");
    CHECK(ll_utf8_decode("\xf4\x90\x80\x80", 4, &used) == 0xFFFD && used == 1, "beyond U+10FFFF");
    for (int b = 0; b < 256; b++) CHECK(ll_cpt_to_byte(ll_byte_to_cpt((unsigned char)b)) == b, "byte map %d", b);
    CHECK(ll_byte_to_cpt(' ') == 0x120 && ll_byte_to_cpt('\n') == 0x10A && ll_byte_to_cpt('a') == 'a', "Ġ, Ċ");
    CHECK(ll_cpt_flags(0x3000) & LL_CPT_WHITESPACE, "U+3000 is whitespace");
    CHECK(ll_cpt_flags(0x0661) & LL_CPT_NUMBER, "Arabic-Indic digit is a number");
    CHECK(ll_cpt_flags(0x0301) & LL_CPT_MARK, "combining acute is a mark");
}

// ---- with the shared vocabularies ------------------------------------------------------------

typedef struct {
    const char *vocab, *text;
    bool add_special, parse_special;
    int n;
    ll_token ids[24];
} known;

// Recorded from the reference (llama-tokenize --ids --no-escape [--no-bos] [--no-parse-special]).
static const known cases[] = {
    {"llama-spm", "<s>Hello</s> world", false, true, 5, {1, 15043, 2, 29871, 3186}},
    {"llama-spm", "<s>Hello</s> world", false, false, 8, {529, 29879, 29958, 10994, 829, 29879, 29958, 3186}},
    {"llama-spm", "Hello\n<s> x", true, true, 6, {1, 15043, 13, 1, 29871, 921}},
    {"llama-spm", "<s>", true, true, 2, {1, 1}},
    {"llama-spm", "", true, true, 1, {1}},
    {"llama-spm", "a\xff" "b\xc3", false, false, 4, {263, 258, 101, 198}},
    {"llama-spm", "\xe2\x82 x\x80\xc0\x80", false, false, 10, {29871, 229, 133, 229, 153, 132, 29916, 131, 195, 131}},
    {"llama-spm", "\xed\xa0\x80!\xf0\x9f\x98", false, false, 8, {29871, 240, 163, 131, 29991, 243, 162, 155}},
    {"llama-bpe", "<|begin_of_text|>Hi<|eot_id|><|start_header_id|>", false, true, 4, {128000, 13347, 128009, 128006}},
    {"llama-bpe", " <|eot_id|> hi", true, true, 4, {128000, 220, 128009, 15960}},
    {"llama-bpe", "<s>", true, true, 3, {128000, 45147, 29}},
    {"llama-bpe", "", true, true, 1, {128000}},
    {"llama-bpe", "a\xff" "b\xc3", false, false, 4, {64, 5809, 65, 5809}},
    {"llama-bpe", "\xe2\x82 x\x80\xc0\x80", false, false, 4, {10178, 865, 5809, 188}},
    {"llama-bpe", "\xed\xa0\x80!\xf0\x9f\x98", false, false, 4, {169, 64319, 0, 58432}},
    {"gpt-2", "a<|endoftext|>b", false, true, 3, {64, 50256, 65}},
    {"gpt-2", "a<|endoftext|>b", false, false, 9, {64, 27, 91, 437, 1659, 5239, 91, 29, 65}},
    {"gpt-2", "a\xff" "b\xc3", false, false, 4, {64, 4210, 65, 4210}},
    {"gpt-2", "\xed\xa0\x80!\xf0\x9f\x98", false, false, 5, {169, 254, 222, 0, 48585}},
    {"deepseek-llm", "\xc3\xb1\xc3\xba \xc3\xb8", false, false, 4, {5375, 100004, 207, 100002}}, // user-defined tokens
    {"deepseek-llm", "\xed\xa0\x80!\xf0\x9f\x98", false, false, 6, {167, 241, 209, 0, 16211, 10003}},
    {"falcon", ">>ABSTRACT<<x", false, true, 2, {1, 99}},
    {"falcon", ">>ABSTRACT<<x", false, false, 4, {500, 20305, 503, 99}},
    {"falcon", "\xe2\x82 x\x80\xc0\x80", false, false, 8, {13112, 133, 13112, 133, 1859, 13112, 133, 186}},
};

static ll_model *load_vocab(const char *dir, const char *name) {
    char path[4096], err[512] = "";
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf", dir, name);
    ll_model_params mp = ll_model_default_params();
    mp.vocab_only = true;
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "%s: %s", name, err);
    return m;
}

static void check_known(const char *dir) {
    const char *names[] = {"llama-spm", "llama-bpe", "gpt-2", "deepseek-llm", "falcon"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        ll_model *m = load_vocab(dir, names[k]);
        if (!m) continue;
        const ll_vocab *v = ll_model_get_vocab(m);
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            const known *c = &cases[i];
            if (strcmp(c->vocab, names[k])) continue;
            ll_token got[64];
            int32_t n = ll_tokenize(v, c->text, (int32_t)strlen(c->text), got, 64, c->add_special, c->parse_special);
            bool same = n == c->n && memcmp(got, c->ids, (size_t)n * sizeof *got) == 0;
            char g[512] = "";
            for (int32_t j = 0, o = 0; !same && j < n && j < 64 && o < 480; j++) o += snprintf(g + o, sizeof g - (size_t)o, " %d", got[j]);
            CHECK(same, "%s case %zu (special %d, parse %d): got%s", c->vocab, i, c->add_special, c->parse_special, g);
        }
        // A short buffer gets the count and the first n_max ids.
        ll_token two[2] = {-7, -7};
        int32_t n = ll_tokenize(v, "Hello world and more", 20, two, 1, false, false);
        CHECK(n > 1 && two[1] == -7, "%s: n_max not respected (n=%d)", names[k], n);
        ll_model_free(m);
    }
}

// Streaming: a character split over byte tokens comes out whole, only once complete.
static void check_detok(const char *dir) {
    ll_model *m = load_vocab(dir, "llama-spm");
    if (!m) return;
    const ll_vocab *v = ll_model_get_vocab(m);
    ll_token e_acute[2] = {198, 172}; // <0xC3> <0xA9>
    CHECK(!strcmp(ll_token_get_text(v, 198), "<0xC3>"), "token 198 is '%s'", ll_token_get_text(v, 198));
    ll_detok d = {0};
    char out[64];
    size_t n = ll_detok_push(&d, v, e_acute[0], false, out, sizeof out);
    CHECK(n == 0, "half a character was printed (%zu bytes)", n);
    n = ll_detok_push(&d, v, e_acute[1], false, out, sizeof out);
    CHECK(n == 2 && !memcmp(out, "\xc3\xa9", 2), "é not printed whole (%zu bytes)", n);
    // An invalid byte becomes U+FFFD; a dangling lead byte is flushed as U+FFFD.
    n = ll_detok_push(&d, v, 258, false, out, sizeof out); // <0xFF>
    CHECK(n == 3 && !memcmp(out, "\xef\xbf\xbd", 3), "<0xFF> gave %zu bytes", n);
    n = ll_detok_push(&d, v, 198, false, out, sizeof out);
    CHECK(n == 0, "dangling lead printed");
    n = ll_detok_flush(&d, out, sizeof out);
    CHECK(n == 3 && !memcmp(out, "\xef\xbf\xbd", 3), "flush gave %zu bytes", n);
    // A buffer too small for the piece gets whole characters only, and says how many bytes.
    ll_detok d3 = {0};
    char tiny[4] = {'x', 'x', 'x', 'x'};
    ll_token tok[4];
    int32_t nt3 = ll_tokenize(v, "\xc3\xa9\xe2\x82\xac", 5, tok, 4, false, false); // "é€"
    size_t got = 0;
    for (int32_t i = 0; i < nt3; i++) got += ll_detok_push(&d3, v, tok[i], false, tiny + got, 4 - got);
    CHECK(got == 3 && !memcmp(tiny, " \xc3\xa9", 3), "short buffer: %zu bytes", got); // SPM adds a space
    // Control tokens print only when asked; SPM pieces turn U+2581 into spaces.
    char piece[32];
    CHECK(ll_token_to_piece(v, 2, piece, sizeof piece, false) == 0, "</s> printed without special");
    CHECK(ll_token_to_piece(v, 2, piece, sizeof piece, true) == 4 && !memcmp(piece, "</s>", 4), "</s> with special");
    int32_t k = ll_token_to_piece(v, 15043, piece, sizeof piece, false);
    CHECK(k == 6 && !memcmp(piece, " Hello", 6), "piece of 15043");
    CHECK(ll_token_to_piece(v, 15043, piece, 3, false) == -6, "short buffer must return -6");
    ll_model_free(m);

    m = load_vocab(dir, "llama-bpe");
    if (!m) return;
    v = ll_model_get_vocab(m);
    CHECK(ll_vocab_is_eog(v, 128009) && !ll_vocab_is_eog(v, 9906), "llama-bpe end of generation");
    CHECK(ll_vocab_is_control(v, 128009), "<|eot_id|> is a control token");
    // A 4-byte emoji split across byte-level tokens streams out whole.
    ll_token t[8];
    int32_t nt = ll_tokenize(v, "\xf0\x9f\xa6\x99!", 5, t, 8, false, false);
    CHECK(nt >= 2, "emoji tokens");
    ll_detok d2 = {0};
    char all[64];
    size_t o = 0;
    for (int32_t i = 0; i < nt; i++) {
        size_t before = o;
        o += ll_detok_push(&d2, v, t[i], false, all + o, sizeof all - o);
        CHECK(o == before || o - before >= 4 || before >= 4, "partial emoji printed");
    }
    o += ll_detok_flush(&d2, all + o, sizeof all - o);
    CHECK(o == 5 && !memcmp(all, "\xf0\x9f\xa6\x99!", 5), "emoji round trip (%zu bytes)", o);
    ll_model_free(m);
}

// ---- end of generation in gpt-oss's harmony format -------------------------------------------

// A reply is "<|channel|>analysis<|message|>...<|end|><|start|>assistant<|channel|>final
// <|message|>...<|return|>": <|return|> and <|call|> end generation, <|end|> must not (it ends
// the analysis, and the answer comes after it). A vocabulary without <|return|> keeps <|end|>
// as its end of turn (Phi-3).
static void write_vocab(const char *path, const char *const *tokens, const uint32_t *types, uint32_t n) {
    gbuf b = {0};
    gb_header(&b, 3, 0, 6);
    gb_key(&b, "general.architecture", GB_STR); gb_str(&b, "llama");
    gb_key(&b, "tokenizer.ggml.model", GB_STR); gb_str(&b, "llama");
    gb_key(&b, "tokenizer.ggml.tokens", GB_ARR); gb_u32(&b, GB_STR); gb_u64(&b, n);
    for (uint32_t i = 0; i < n; i++) gb_str(&b, tokens[i]);
    gb_key(&b, "tokenizer.ggml.scores", GB_ARR); gb_u32(&b, GB_F32); gb_u64(&b, n);
    for (uint32_t i = 0; i < n; i++) gb_f32(&b, -(float)i);
    gb_key(&b, "tokenizer.ggml.token_type", GB_ARR); gb_u32(&b, GB_I32); gb_u64(&b, n);
    for (uint32_t i = 0; i < n; i++) gb_u32(&b, types[i]);
    gb_kv_u32(&b, "tokenizer.ggml.eos_token_id", 2);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b.p, 1, b.n, f) == b.n && fclose(f) == 0, "cannot write %s", path);
    gb_free(&b);
}

static void check_harmony_eog(void) {
    const int failures0 = test_failures;
    char dir[512], path[600], err[256];
    if (!scratch_dir_make(dir, sizeof dir, "test_tokenizer_edge")) return;
    snprintf(path, sizeof path, "%s/vocab.gguf", dir);
    static const char *const tokens[] = {"<unk>", "<s>", "</s>", "<|start|>", "<|channel|>", "<|message|>",
                                         "<|end|>", "<|return|>", "<|call|>", "\xe2\x96\x81" "a", "b"};
    static const uint32_t types[] = {2, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1};
    for (int harmony = 1; harmony >= 0; harmony--) {
        write_vocab(path, tokens, types, harmony ? 11 : 7); // without <|return|> and <|call|>: Phi-3-like
        ll_model_params mp = ll_model_default_params();
        mp.vocab_only = true;
        ll_model *m = ll_model_load(path, &mp, err, sizeof err);
        CHECK(m != NULL, "crafted vocabulary: %s", err);
        if (!m) break;
        const ll_vocab *v = ll_model_get_vocab(m);
        CHECK(ll_vocab_is_eog(v, 2), "</s> ends generation");
        if (harmony) {
            CHECK(ll_vocab_is_eog(v, 7) && ll_vocab_is_eog(v, 8), "harmony: <|return|> and <|call|> end generation");
            CHECK(!ll_vocab_is_eog(v, 6), "harmony: <|end|> ends only the analysis, not the reply");
            CHECK(!ll_vocab_is_eog(v, 3) && !ll_vocab_is_eog(v, 4) && !ll_vocab_is_eog(v, 5), "harmony: markup tokens");
        } else {
            CHECK(ll_vocab_is_eog(v, 6), "without <|return|>: <|end|> ends the turn");
        }
        ll_model_free(m);
    }
    if (test_failures == failures0) scratch_dir_remove(dir);
}

int main(void) {
    check_utf8();
    check_harmony_eog();
    check_splitters();
    const char *dir = test_shared_dir();
    if (!dir) {
        fputs("test_tokenizer_edge: no shared data, vocabulary checks skipped\n", stderr);
        return test_result("test_tokenizer_edge");
    }
    check_known(dir);
    check_detok(dir);
    return test_result("test_tokenizer_edge");
}
