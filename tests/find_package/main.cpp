// Coursework built against the installed corelab: the mean of 1000 numbers.
#include <corelab/dataset.hpp>  // make_uniform
#include <corelab/reduce.hpp>   // sum_fast
#include <cstdio>               // std::printf

int main() {
    const auto d = corelab::make_uniform(1000, 7);
    std::printf("mean %.6f\n", corelab::sum_fast(d).mean());
    return 0;
}
