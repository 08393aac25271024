// llamalite template: prints the prompt a chat template makes of a conversation.
//
//   llamalite template [-m MODEL] [--chat-template-file F | --chat-template NAME] --messages FILE.json
//                      [--add-generation-prompt]
//
// FILE.json is an array of messages ({"role", "content"}, and whatever else the template reads:
// "reasoning_content", "tool_calls", ...), or an object with such a "messages" array and
// optionally "tools" (as /save writes, or as OpenAI-style requests have it). The model's own
// Jinja template (or the one of --chat-template-file) renders it as transformers does, with the
// model's BOS/EOS token texts as bos_token/eos_token; the text goes to stdout exactly, with no
// BOS the template does not write and no newline added. Where the template fails (it raises,
// or uses what is not supported), the command fails with its line:column: this command shows
// the template as it is, with no fallback. --chat-template NAME renders with a built-in family.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "chat_tmpl.h"
#include "json.h"
#include "progress.h"

static void usage(FILE *out) {
    fputs("usage: llamalite template [-m MODEL] [--chat-template-file F | --chat-template NAME] "
          "--messages FILE.json [--add-generation-prompt]\n"
          "Prints the prompt that the chat template makes of the messages (a JSON array of\n"
          "{\"role\", \"content\", ...} objects, or {\"messages\": [...], \"tools\": [...]}).\n\n"
          "options:\n"
          "  -m, --model FILE          take the Jinja template and BOS/EOS texts from this model\n"
          "  --chat-template-file F    use the Jinja template in file F (overrides the model's)\n"
          "  --chat-template NAME      use a built-in template, or Jinja text (overrides the model's)\n"
          "  --messages FILE           the conversation (JSON)\n"
          "  --add-generation-prompt   end with the start of an assistant turn\n"
          "  --time                    also parse and render 100 times; the median times go to stderr\n"
          "  --list                    print the built-in template names\n", out);
}

// Reads the messages of a conversation file; *msgs points into the returned json.
static json *load_messages(const char *path, ll_chat_msg **msgs, size_t *n) {
    size_t len = 0;
    char *text = args_read_file(path, &len);
    if (!text) return NULL;
    char err[256];
    json *j = json_parse(text, len, err, sizeof err);
    free(text);
    if (!j) {
        fprintf(stderr, "llamalite: %s: %s\n", path, err);
        return NULL;
    }
    const json *arr = j->type == JSON_OBJECT ? json_get(j, "messages") : j;
    if (!arr || arr->type != JSON_ARRAY) {
        fprintf(stderr, "llamalite: %s: expected an array of messages\n", path);
        json_free(j);
        return NULL;
    }
    *msgs = calloc(arr->n ? arr->n : 1, sizeof **msgs);
    if (!*msgs) {
        fputs("llamalite: out of memory\n", stderr);
        json_free(j);
        return NULL;
    }
    for (size_t i = 0; i < arr->n; i++) {
        const char *role = json_str(json_get(&arr->items[i], "role"));
        const char *content = json_str(json_get(&arr->items[i], "content"));
        const json *c = json_get(&arr->items[i], "content");
        if (!role || (!content && !(c && c->type == JSON_NULL))) {
            fprintf(stderr, "llamalite: %s: message %zu needs string \"role\" and \"content\"\n", path, i);
            free(*msgs);
            json_free(j);
            return NULL;
        }
        (*msgs)[i].role = role;
        (*msgs)[i].content = content ? content : "";
    }
    *n = arr->n;
    return j;
}

// The model's Jinja template (or file's) with the conversation file as it is.
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// --time: the median of 100 parses and renders (a benchmark; the machine's load shows in it).
static void time_jinja(const char *text, const char *conv, const ll_chat_jinja_vars *vars) {
    enum { RUNS = 100 };
    double parse_ms[RUNS], render_ms[RUNS];
    char err[600];
    for (int i = 0; i < RUNS; i++) {
        double t0 = cli_now();
        ll_chat_jinja *t = ll_chat_jinja_parse(text, err, sizeof err);
        double t1 = cli_now();
        char *out = NULL;
        if (t) ll_chat_jinja_render(t, conv, vars, &out, err, sizeof err);
        render_ms[i] = (cli_now() - t1) * 1e3;
        parse_ms[i] = (t1 - t0) * 1e3;
        free(out);
        ll_chat_jinja_free(t);
    }
    qsort(parse_ms, RUNS, sizeof *parse_ms, cmp_double);
    qsort(render_ms, RUNS, sizeof *render_ms, cmp_double);
    fprintf(stderr, "template: parse %.3f ms, render %.3f ms (median of %d; fastest %.3f / %.3f ms)\n",
            parse_ms[RUNS / 2], render_ms[RUNS / 2], RUNS, parse_ms[0], render_ms[0]);
}

// The model's vocabulary only (no weights), for its BOS/EOS texts; NULL after one error line.
static ll_model *load_vocab(const char *path, const char **bos, const char **eos) {
    char err[512];
    ll_model_params mp = ll_model_default_params();
    mp.vocab_only = true;
    ll_model *model = ll_model_load(path, &mp, err, sizeof err);
    if (!model) {
        fprintf(stderr, "llamalite: %s\n", err);
        return NULL;
    }
    const ll_vocab *v = ll_model_get_vocab(model);
    if (ll_vocab_bos(v) >= 0) *bos = ll_token_get_text(v, ll_vocab_bos(v));
    if (ll_vocab_eos(v) >= 0) *eos = ll_token_get_text(v, ll_vocab_eos(v));
    return model;
}

// The Jinja text: inline (--chat-template TEXT), the file's, or the model's.
static int render_jinja(const char *model_path, const char *file, const char *inline_text, const char *messages,
                        bool add_ass, bool timed) {
    int rc = 1;
    ll_model *model = NULL;
    char *file_text = NULL, *conv = NULL, *out = NULL, err[600];
    ll_chat_jinja *t = NULL;
    const char *bos = NULL, *eos = NULL, *text = NULL, *origin = file;
    size_t len;
    if (!(conv = args_read_file(messages, &len))) goto done;
    if (model_path && !(model = load_vocab(model_path, &bos, &eos))) goto done;
    if (inline_text) {
        text = inline_text;
        origin = "--chat-template";
    } else if (file) {
        if (!(file_text = args_read_file(file, &len))) goto done;
        text = file_text;
    } else {
        text = ll_model_meta_str(model, "tokenizer.chat_template");
        origin = model_path;
        if (!text) {
            fprintf(stderr, "llamalite: %s has no chat template (use --chat-template-file F or --chat-template NAME)\n",
                    model_path);
            goto done;
        }
    }
    if (!(t = ll_chat_jinja_parse(text, err, sizeof err))) {
        fprintf(stderr, "llamalite: %s: chat template %s\n", origin, err);
        goto done;
    }
    ll_chat_jinja_vars vars = {.add_generation_prompt = add_ass, .bos_token = bos, .eos_token = eos};
    if (ll_chat_jinja_render(t, conv, &vars, &out, err, sizeof err) != 0) {
        fprintf(stderr, "llamalite: %s: %s%s\n", !strncmp(err, "conversation", 12) ? messages : origin,
                !strncmp(err, "line ", 5) ? "chat template " : "", err);
        goto done;
    }
    fputs(out, stdout);
    if (timed) time_jinja(text, conv, &vars);
    rc = 0; // main checks that stdout was written
done:
    free(out);
    ll_chat_jinja_free(t);
    free(file_text);
    free(conv);
    ll_model_free(model);
    return rc;
}

int cmd_template(int argc, char **argv) {
    const char *model_path = NULL, *name = NULL, *file = NULL, *messages = NULL;
    bool add_ass = false, timed = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--list")) {
            for (const char *const *n = ll_chat_template_names(); *n; n++) puts(*n);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!args_value(argc, argv, &i, &model_path)) return 1;
        } else if (!strcmp(a, "--chat-template")) {
            if (!args_value(argc, argv, &i, &name)) return 1;
        } else if (!strcmp(a, "--chat-template-file")) {
            if (!args_value(argc, argv, &i, &file)) return 1;
        } else if (!strcmp(a, "--jinja")) {
            // accepted as llama-cli does: Jinja is the default
        } else if (!strcmp(a, "--messages")) {
            if (!args_value(argc, argv, &i, &messages)) return 1;
        } else if (!strcmp(a, "--add-generation-prompt")) {
            add_ass = true;
        } else if (!strcmp(a, "--time")) {
            timed = true;
        } else {
            args_unknown("template", a);
            return 1;
        }
    }
    if (!messages || (!model_path && !name && !file)) {
        fputs("llamalite template: needs --messages FILE and -m MODEL, --chat-template-file F or "
              "--chat-template NAME\n", stderr);
        return 1;
    }
    if (!name || chat_tmpl_is_jinja(name)) return render_jinja(model_path, file, name, messages, add_ass, timed);
    if (!ll_chat_detect(name)) {
        fprintf(stderr, "llamalite: unknown chat template '%s' (see 'llamalite template --list')\n", name);
        return 1;
    }

    ll_chat_msg *msgs = NULL;
    size_t n = 0;
    json *doc = load_messages(messages, &msgs, &n);
    if (!doc) return 1;

    int rc = 1;
    ll_model *model = NULL;
    const char *tmpl = name, *bos = NULL, *eos = NULL;
    if (model_path && !(model = load_vocab(model_path, &bos, &eos))) goto done;
    char *out = NULL;
    int r = ll_chat_render(tmpl, msgs, n, add_ass, bos, eos, &out, NULL, NULL);
    if (r != 0) {
        fputs(r == -1 ? "llamalite: unknown chat template\n" : "llamalite: out of memory\n", stderr);
        goto done;
    }
    fputs(out, stdout);
    free(out);
    rc = 0; // main checks that stdout was written
done:
    ll_model_free(model);
    free(msgs);
    json_free(doc);
    return rc;
}
