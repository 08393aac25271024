// llamalite bench --moe-bound: after each tg test on a mixture of experts, what its decodes
// read and how fast a decode could go that does nothing but read those bytes (the engine's
// replay, ll_moe_traffic_measure), next to the streaming bound that assumes every byte comes
// from DRAM. tg's share of the replay bound says how close generation is to this machine's
// memory system for this model, experts reused from the cache included.
#include "bench_moe.h"

int bench_moe_bound(ll_context *ctx, const char *model_path, const ll_token *tokens, int n_gen, double tg_ts,
                    FILE *out) {
    char err[512];
    ll_moe_traffic t;
    ll_kv_clear(ctx);
    if (ll_moe_traffic_measure(ctx, tokens, n_gen, &t, err, sizeof err) != 0) {
        fprintf(stderr, "llamalite: bench --moe-bound: %s: %s\n", model_path, err);
        return 1;
    }
    const double mb = 1e-6, replay_ts = 1.0 / t.replay_s_per_token;
    const double stream_ts = t.stream_bytes_per_s / t.bytes_per_token;
    fprintf(out, "moe-bound tg%d, %d threads: %.1f MB read per token (experts %.1f MB, %.1f%% of them chosen by the "
            "previous token too)\n", n_gen, ll_n_threads(ctx), t.bytes_per_token * mb, t.expert_bytes_per_token * mb,
            100 * t.reused);
    fprintf(out, "  streaming bound (every byte from DRAM, %.1f GB/s): %.1f t/s\n", t.stream_bytes_per_s * 1e-9,
            stream_ts);
    fprintf(out, "  replay bound (those reads, nothing computed): %.3f ms/token = %.1f t/s (%.1f GB/s)\n",
            t.replay_s_per_token * 1e3, replay_ts, t.bytes_per_token / t.replay_s_per_token * 1e-9);
    fprintf(out, "  tg%d %.1f t/s = %.0f%% of the replay bound, %.0f%% of the streaming bound\n", n_gen, tg_ts,
            100 * tg_ts / replay_ts, 100 * tg_ts / stream_ts);
    return 0;
}
