// Implementation of corelab/ipc/shared_array.hpp: the untyped segment.
#include "corelab/ipc/shared_array.hpp"

#include <fcntl.h>     // posix_fallocate, AT_FDCWD
#include <sys/stat.h>  // fstat
#include <unistd.h>    // getpid, geteuid

#include <boost/interprocess/mapped_region.hpp>         // mapped_region
#include <boost/interprocess/shared_memory_object.hpp>  // shared_memory_object
#include <cstdint>                                      // std::uint64_t
#include <cstring>                                      // std::strerror
#include <limits>                                       // std::numeric_limits
#include <optional>                                     // std::optional

#include "corelab/error.hpp"      // Error
#include "corelab/ipc/names.hpp"  // check_room, track_name, remove_stale_once, lock_as_owner

namespace bip = boost::interprocess;

namespace corelab::ipc::detail {
namespace {

// The segment starts with this header; the elements follow at offset 64.
struct Header {
    std::uint64_t magic;
    std::uint64_t element_size;
    std::uint64_t count;
};
constexpr std::uint64_t segment_magic = 0x636f72656c616231ULL;  // "corelab1"
constexpr std::size_t header_bytes = 64;

// Only objects this user made with no access for others: anything else is
// someone else's (or planted), and is never used.
void check_ours(int fd, const std::string& name) {
    struct stat st{};
    if (::fstat(fd, &st) != 0) throw Error("cannot inspect shared memory '" + name + "': " + std::strerror(errno));
    if (st.st_uid != ::geteuid() || (st.st_mode & 0077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw Error("refusing to open shared memory '" + name + "': it belongs to uid " + std::to_string(st.st_uid) +
                    " with mode " + mode + ", not to this user with mode 0600");
    }
}

}  // namespace

struct Segment::Mapping {
    bip::mapped_region region;
};

Segment Segment::create(std::string name, std::size_t element_size, std::size_t count) {
    remove_stale_once();
    install_signal_cleanup();
    if (element_size == 0 || count > (std::numeric_limits<std::size_t>::max() - header_bytes) / element_size) {
        throw Error("shared memory '" + name + "': " + std::to_string(count) + " elements cannot be addressed");
    }
    const std::size_t bytes = header_bytes + count * element_size;
    check_room(bytes, "shared memory '" + name + "'");

    // create the object: create_only (never adopt an existing one), mode 0600,
    // and lock it: the lock tells a sweep that its owner lives (ipc/names.hpp).
    // A sweep that removed it between the two is noticed: create it again.
    std::optional<HoldSignals> hold(std::in_place);  // until it is tracked
    const std::string path = std::string(shm_directory) + "/" + name;
    bip::shared_memory_object shm;
    ObjectLock lock;
    for (int attempt = 1; !lock; ++attempt) {
        try {
            shm = bip::shared_memory_object(bip::create_only, name.c_str(), bip::read_write, bip::permissions(0600));
        } catch (const bip::interprocess_exception& e) {
            if (e.get_error_code() == bip::already_exists_error) {
                throw Error("shared memory '" + name + "' already exists: refusing to use an object someone else made");
            }
            throw Error("cannot create shared memory '" + name + "': " + e.what());
        }
        try {
            lock = lock_as_owner(AT_FDCWD, path, shm.get_mapping_handle().handle);
        } catch (...) {
            bip::shared_memory_object::remove(name.c_str());
            throw;
        }
        if (!lock && attempt == 8) {
            throw Error("cannot create shared memory '" + name + "': another process removed it 8 times");
        }
    }
    Segment s;
    s.name_ = std::move(name);
    s.creator_ = ::getpid();
    s.lock_ = std::move(lock);
    track_name(s.name_);  // throws: s's destructor removes the segment
    hold.reset();
    try {
        // reserve the memory now: on a full /dev/shm a plain truncate succeeds
        // and the first write kills the process with SIGBUS
        shm.truncate(static_cast<bip::offset_t>(bytes));
        const int fd = shm.get_mapping_handle().handle;
        if (const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)); err != 0) {
            throw Error("cannot reserve " + std::to_string(bytes) + " bytes for shared memory '" + s.name_ +
                            "': " + std::strerror(err),
                        About::shared_memory);
        }
        // map the segment and write its header
        s.mapping_ = std::make_unique<Mapping>(Mapping{bip::mapped_region(shm, bip::read_write)});
    } catch (const bip::interprocess_exception& e) {
        throw Error("cannot create shared memory '" + s.name_ + "': " + e.what());  // s's destructor removes it
    }
    auto* base = static_cast<char*>(s.mapping_->region.get_address());
    const Header header{segment_magic, element_size, count};
    std::memcpy(base, &header, sizeof header);
    s.data_ = base + header_bytes;
    s.count_ = count;
    s.writable_ = true;
    return s;
}

Segment Segment::open(std::string name, std::size_t element_size, Access access) {
    const bip::mode_t mode = access == Access::read_write ? bip::read_write : bip::read_only;
    Segment s;
    s.name_ = std::move(name);
    try {
        // open the object and check that it is ours before mapping it
        bip::shared_memory_object shm(bip::open_only, s.name_.c_str(), mode);
        check_ours(shm.get_mapping_handle().handle, s.name_);
        bip::offset_t size = 0;
        if (!shm.get_size(size) || size < static_cast<bip::offset_t>(header_bytes)) {
            throw Error("shared memory '" + s.name_ + "' is not a corelab segment (too small)");
        }
        // map the segment
        s.mapping_ = std::make_unique<Mapping>(Mapping{bip::mapped_region(shm, mode)});
        Header header{};
        std::memcpy(&header, s.mapping_->region.get_address(), sizeof header);
        if (header.magic != segment_magic) throw Error("shared memory '" + s.name_ + "' is not a corelab segment");
        if (header.element_size != element_size) {
            throw Error("shared memory '" + s.name_ + "' holds elements of " + std::to_string(header.element_size) +
                        " bytes, not " + std::to_string(element_size) + ": open it with the type it was created with");
        }
        if (header.count > (static_cast<std::uint64_t>(size) - header_bytes) / element_size) {
            throw Error("shared memory '" + s.name_ + "' is shorter than its header says");
        }
        s.count_ = header.count;
    } catch (const bip::interprocess_exception& e) {
        throw Error("cannot open shared memory '" + s.name_ + "': " + e.what());
    }
    s.data_ = static_cast<char*>(s.mapping_->region.get_address()) + header_bytes;
    s.writable_ = access == Access::read_write;
    return s;
}

Segment::Segment(Segment&& o) noexcept
    : mapping_(std::move(o.mapping_)),
      name_(std::move(o.name_)),
      lock_(std::move(o.lock_)),
      data_(o.data_),
      count_(o.count_),
      creator_(o.creator_),
      writable_(o.writable_) {
    o.data_ = nullptr;
    o.count_ = 0;
    o.creator_ = 0;
    o.name_.clear();
}

Segment& Segment::operator=(Segment&& o) noexcept {
    if (this != &o) {
        release();
        mapping_ = std::move(o.mapping_);
        name_ = std::move(o.name_);
        lock_ = std::move(o.lock_);
        data_ = o.data_;
        count_ = o.count_;
        creator_ = o.creator_;
        writable_ = o.writable_;
        o.data_ = nullptr;
        o.count_ = 0;
        o.creator_ = 0;
        o.name_.clear();
    }
    return *this;
}

Segment::~Segment() {
    release();
}

void Segment::release() noexcept {
    mapping_.reset();
    // Only the creating process removes the name: a forked child's copy of
    // this object must not delete the parent's segment.
    if (creator_ != 0 && creator_ == ::getpid()) {
        bip::shared_memory_object::remove(name_.c_str());
        untrack_name(name_);
    }
    lock_.reset();  // after the removal: a sweep never sees our live segment unlocked
    creator_ = 0;
    data_ = nullptr;
    count_ = 0;
}

}  // namespace corelab::ipc::detail
