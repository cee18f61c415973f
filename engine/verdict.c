#include "verdict.h"

struct verdict verdict_greedy(const int32_t *draft, const int32_t *target, int gamma)
{
    int a = 0;
    while (a < gamma && draft[a] == target[a])
        a++;
    return (struct verdict){a, target[a]};
}

float verdict_confidence(const float *prob, struct verdict v)
{
    float c = prob[0];
    for (int r = 1; r <= v.accepted; r++)
        c = prob[r] < c ? prob[r] : c;
    return c;
}
