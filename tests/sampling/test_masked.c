/* sampler_sample_masked: only allowed tokens come out, whatever the chain; the distribution over
 * the allowed tokens is the chain's renormalised one; an empty mask is -1. */
#include "sampling/sampling.h"
#include "test.h"

int main(void) {
    enum { N = 200 };
    float logits[N];
    for (int i = 0; i < N; i++) logits[i] = (float)(i % 17) * 0.3f;
    uint64_t mask[(N + 63) / 64] = {0};
    const int allowed[] = {3, 64, 65, 130, 199};
    for (size_t k = 0; k < sizeof allowed / sizeof allowed[0]; k++)
        mask[allowed[k] >> 6] |= 1ull << (allowed[k] & 63);
    sampling_params p;
    sampling_params_default(&p);
    p.seed = 11;
    sampler *chain = NULL, *greedy = NULL;
    CHECK(sampler_chain_new(&p, N, &chain, NULL) == SHIMMY_OK);
    p.temperature = 0.0f;
    CHECK(sampler_chain_new(&p, N, &greedy, NULL) == SHIMMY_OK);
    /* greedy over the allowed set: the best allowed logit (65 % 17 = 14 is the largest) */
    CHECK_EQ_INT(sampler_sample_masked(greedy, logits, mask), 65);
    /* top-k 40 over all tokens would drop most allowed ones: with the mask the chain sees only
     * the allowed five, so each of them comes out, in proportion to its probability */
    int counts[N] = {0};
    const int draws = 20000;
    for (int i = 0; i < draws; i++) {
        const int32_t t = sampler_sample_masked(chain, logits, mask);
        CHECK(t >= 0 && t < N && ((mask[t >> 6] >> (t & 63)) & 1));
        if (t >= 0 && t < N) counts[t]++;
    }
    /* p = softmax(logit / 0.8) over the allowed after top-p 0.95 / min-p 0.05 */
    double z = 0, e[5];
    for (int k = 0; k < 5; k++) z += e[k] = exp(logits[allowed[k]] / 0.8);
    for (int k = 0; k < 5; k++) {
        const double want = e[k] / z;
        if (want > 0.1) CHECK_NEAR((double)counts[allowed[k]] / draws, want, 0.05);
    }
    const uint64_t none[(N + 63) / 64] = {0};
    CHECK_EQ_INT(sampler_sample_masked(chain, logits, none), -1);
    sampler_free(chain);
    sampler_free(greedy);
    return test_finish("sampling masked");
}
