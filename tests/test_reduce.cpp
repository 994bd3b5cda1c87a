// Tests of corelab/reduce.hpp: the notebook's loop and the fast sum agree,
// exact small cases, and partials of unequal chunks combine exactly.
#include <doctest/doctest.h>

#include <cereal/archives/binary.hpp>  // cereal's own binary archives
#include <cmath>                       // std::abs
#include <limits>                      // std::numeric_limits
#include <numeric>                     // std::iota
#include <sstream>                     // std::stringstream
#include <vector>                      // std::vector

#include "corelab/dataset.hpp"
#include "corelab/error.hpp"
#include "corelab/reduce.hpp"

using corelab::Partial;

TEST_CASE("reduce: sum_loop and sum_fast are exact on small integers for every size") {
    for (std::size_t n : {0u, 1u, 2u, 3u, 7u, 8u, 9u, 15u, 16u, 17u, 31u, 33u, 1000u, 1000001u}) {
        std::vector<double> d(n);
        std::iota(d.begin(), d.end(), 1.0);  // 1..n: every partial sum is an exact integer below 2^53
        const double exact = static_cast<double>(n) * static_cast<double>(n + 1) / 2.0;
        CAPTURE(n);
        CHECK(corelab::sum_loop(d) == Partial{exact, n});
        CHECK(corelab::sum_fast(d) == Partial{exact, n});
    }
}

TEST_CASE("reduce: sum_loop adds in the notebook's order") {
    // 1e16 + 1 + 1 - 1e16: in order, each +1 is lost to rounding (1e16 + 1 == 1e16).
    const std::vector<double> d{1e16, 1.0, 1.0, -1e16};
    CHECK(corelab::sum_loop(d).sum == 0.0);
}

TEST_CASE("reduce: sum_fast agrees with sum_loop on random data within the rounding bound") {
    for (std::size_t n : {7u, 1000u, 1000001u, 3000017u}) {
        const auto d = corelab::make_uniform(n, 5);
        const double a = corelab::sum_loop(d).sum;
        const double b = corelab::sum_fast(d).sum;
        CAPTURE(n);
        CHECK(std::abs(a - b) <= 2.0 * static_cast<double>(n) * std::numeric_limits<double>::epsilon() * a);
        CHECK(corelab::same_within_rounding(corelab::sum_loop(d), corelab::sum_fast(d)));
    }
}

TEST_CASE("reduce: same_within_rounding allows the rounding bound and nothing more") {
    const double eps = std::numeric_limits<double>::epsilon();
    const Partial a{1000.0, 1000};  // mean 1: the bound is 2 * 999 * eps
    CHECK(corelab::same_within_rounding(a, a));
    CHECK(corelab::same_within_rounding(a, Partial{1000.0 * (1.0 + 1998.0 * eps * 0.99), 1000}));
    CHECK_FALSE(corelab::same_within_rounding(a, Partial{1000.0 * (1.0 + 1998.0 * eps * 1.5), 1000}));
    CHECK_FALSE(corelab::same_within_rounding(a, Partial{1000.0, 999}));                 // a number lost
    CHECK_FALSE(corelab::same_within_rounding(Partial{0.5, 1}, Partial{0.5 + eps, 1}));  // one number: exact
    CHECK(corelab::same_within_rounding(Partial{}, Partial{}));
}

TEST_CASE("reduce: check_within_rounding names the approach, its reference and both figures") {
    const Partial a{1000.0, 1000};
    CHECK_NOTHROW(corelab::check_within_rounding("two_thread", a, "serial_loop", a));
    CHECK_THROWS_WITH_AS(corelab::check_within_rounding("two_thread", Partial{999.0, 999}, "serial_loop", a),
                         "two_thread disagrees with serial_loop by more than rounding allows: mean 1 of 999 numbers "
                         "against 1 of 1000",
                         corelab::Error);
    CHECK_THROWS_WITH_AS(corelab::check_within_rounding("a", Partial{}, "b", a), doctest::Contains("mean 0 of 0"),
                         corelab::Error);
}

namespace {

// An archive in Boost.Serialization's manner (`archive & member`), as Boost.MPI
// uses one: it records what it is given, or writes recorded values back.
struct Recorder {
    std::vector<double> seen;
    bool loading = false;
    std::size_t next = 0;
    template <class T>
    Recorder& operator&(T& value) {
        if (loading) {
            value = static_cast<T>(seen.at(next++));
        } else {
            seen.push_back(static_cast<double>(value));
        }
        return *this;
    }
};

}  // namespace

TEST_CASE("reduce: a Partial serialises member by member, for Boost.Serialization and cereal alike") {
    Partial p{2.5, 7};
    Recorder out;
    serialize(out, p, 0);  // found by argument-dependent lookup, as Boost.Serialization finds it
    CHECK(out.seen == std::vector<double>{2.5, 7.0});
    Recorder in{out.seen, true};
    Partial back;
    serialize(in, back, 0);
    CHECK(back == p);
    std::stringstream bytes;
    {
        cereal::BinaryOutputArchive archive(bytes);
        archive(p);
    }
    Partial loaded;
    cereal::BinaryInputArchive archive(bytes);
    archive(loaded);
    CHECK(loaded == p);
}

TEST_CASE("reduce: partials of unequal chunks combine to the exact mean but the mean of means does not") {
    // The notebook's split of n = 5: 0..n1 and n1+1..n-1 with n1 = 2 -> 3 and 2 elements.
    const std::vector<double> d{1, 2, 3, 4, 10};
    const std::span<const double> all(d);
    const Partial first = corelab::sum_loop(all.subspan(0, 3));
    const Partial second = corelab::sum_loop(all.subspan(3));
    CHECK(first == Partial{6.0, 3});
    CHECK(second == Partial{14.0, 2});
    CHECK(corelab::combine(first, second).mean() == doctest::Approx(4.0));
    const std::vector<Partial> parts{first, second};
    CHECK(corelab::combine(parts) == Partial{20.0, 5});
    const double mean_of_means = (first.mean() + second.mean()) / 2.0;
    CHECK(mean_of_means == doctest::Approx(4.5));  // biased: what the notebook computes
}

TEST_CASE("reduce: the mean of nothing throws") {
    CHECK_THROWS_AS(Partial{}.mean(), corelab::Error);
    CHECK(corelab::combine(std::span<const Partial>{}) == Partial{});
}

TEST_CASE("reduce: chunks cover every element exactly once for any size and part count") {
    for (std::size_t n : {0u, 1u, 2u, 3u, 7u, 1000u, 1001u}) {
        for (std::size_t parts : {1u, 2u, 3u, 7u, 16u}) {
            std::size_t next = 0;
            for (std::size_t k = 0; k < parts; ++k) {
                const auto r = corelab::chunk_range(n, k, parts);
                CAPTURE(n);
                CAPTURE(parts);
                CHECK(r.first == next);
                CHECK(r.count <= n / parts + 1);
                CHECK(r.count >= n / parts);
                next += r.count;
            }
            CHECK(next == n);
        }
    }
    std::vector<double> d{1, 2, 3, 4, 5};
    CHECK(corelab::chunk(std::span<double>(d), 0, 2).size() == 3);
    CHECK(corelab::chunk(std::span<double>(d), 1, 2)[0] == 4);
    CHECK_THROWS_AS(corelab::chunk_range(5, 0, 0), corelab::Error);
    CHECK_THROWS_AS(corelab::chunk_range(5, 2, 2), corelab::Error);
}
