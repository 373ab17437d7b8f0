// The envelope around every archive, atomic file writes, and the small helpers of the serialize
// functions (payload budget, strings, doubles, errors).
//
// Envelope layout (every field little-endian, 40 bytes, then the metadata, then the payload):
//   0  8  magic "SFNL\r\n\x1a\n" (catches text-mode transfers that rewrite line ends)
//   8  2  envelope version (1)
//  10  2  object type (archive_type)
//  12  2  format version (archive_format_version)
//  14  1  archive format (archive_format)
//  15  1  platform of a binary archive (byte order, sizes of long and size_t); 0 for text and XML
//  16  8  payload length in bytes
//  24  4  metadata length in bytes (at most archive_max_metadata_bytes)
//  28  4  CRC-32C of the metadata followed by the payload
//  32  4  reserved, zero
//  36  4  CRC-32C of bytes 0..35
#include "archive.hpp"

#include "smartfunnel/detail/crc32c.hpp"

#include <boost/archive/basic_archive.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <system_error>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#define SMARTFUNNEL_POSIX_FILES 1
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace smartfunnel {

namespace fs = std::filesystem;

std::string_view to_string(archive_type type) noexcept {
  switch (type) {
  case archive_type::funnel:
    return "funnel";
  case archive_type::event_log:
    return "event_log";
  case archive_type::fit_options:
    return "fit_options";
  case archive_type::fit_statistics:
    return "fit_statistics";
  case archive_type::funnel_model:
    return "funnel_model";
  }
  return "unknown";
}

std::string_view to_string(archive_format format) noexcept {
  switch (format) {
  case archive_format::binary:
    return "binary";
  case archive_format::text:
    return "text";
  case archive_format::xml:
    return "xml";
  }
  return "unknown";
}

archive_format parse_archive_format(std::string_view name) {
  if (name == "binary") return archive_format::binary;
  if (name == "text") return archive_format::text;
  if (name == "xml") return archive_format::xml;
  throw std::invalid_argument("archive format must be 'binary', 'text' or 'xml', got '" + std::string(name) +
                              "'");
}

archive_info read_archive_info(const fs::path& path) { return detail::read_envelope(path).info; }

archive_info read_archive_info_from_string(std::string_view bytes) {
  return detail::read_envelope(bytes).info;
}

} // namespace smartfunnel

namespace smartfunnel::detail {

namespace {

constexpr std::array<char, 8> magic{'S', 'F', 'N', 'L', '\r', '\n', '\x1a', '\n'};

// Byte order and the sizes a Boost binary archive depends on.
constexpr std::uint8_t platform_code() {
  return static_cast<std::uint8_t>((std::endian::native == std::endian::little ? 0x01 : 0x02) |
                                   (sizeof(long) == 8 ? 0x10 : 0x00) |
                                   (sizeof(std::size_t) == 8 ? 0x20 : 0x00));
}

std::string describe_platform(std::uint8_t p) {
  std::string out = (p & 0x01) ? "little-endian" : ((p & 0x02) ? "big-endian" : "unknown byte order");
  out += (p & 0x10) ? ", 64-bit long" : ", 32-bit long";
  out += (p & 0x20) ? ", 64-bit size_t" : ", 32-bit size_t";
  return out;
}

// The oldest Boost archive library version smartfunnel reads: archives were first written by
// Boost 1.71 (library version 17). Older versions take Boost code paths (bool tracking flags,
// narrow class ids) that trust bytes a crafted file controls.
constexpr unsigned min_boost_library_version = 17;

void put16(char* p, std::uint16_t v) {
  p[0] = static_cast<char>(v & 0xFF);
  p[1] = static_cast<char>(v >> 8);
}
void put32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
void put64(char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
std::uint64_t get(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::uint32_t body_crc(std::string_view metadata, std::string_view payload) {
  return crc32c(payload.data(), payload.size(), crc32c(metadata.data(), metadata.size()));
}

std::string hex32(std::uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

// The fixed part of an envelope, decoded and checked.
struct header {
  archive_info info;
  std::uint32_t metadata_bytes = 0;
  std::uint32_t checksum = 0;
  [[nodiscard]] std::uint64_t body_bytes() const { return metadata_bytes + info.payload_bytes; }
};

[[noreturn]] void not_an_archive() {
  throw corrupt_archive("not a smartfunnel archive: the file does not start with smartfunnel's magic bytes");
}

// `n` bytes of a file or stream that should start an envelope but are shorter than a header.
[[noreturn]] void too_short(std::string_view start) {
  if (std::string_view(magic.data(), std::min(start.size(), magic.size())) != start.substr(0, magic.size()))
    not_an_archive();
  throw corrupt_archive("corrupt archive: truncated to " + std::to_string(start.size()) +
                        " bytes, shorter than the " + std::to_string(header_bytes) + "-byte envelope header");
}

header decode_header(const char* p) {
  if (std::memcmp(p, magic.data(), magic.size()) != 0) not_an_archive();
  const auto envelope_version = static_cast<std::uint16_t>(get(p + 8, 2));
  // A newer envelope may lay out (and checksum) its header differently: judged before the checksum.
  if (envelope_version > archive_envelope_version)
    throw_unknown_number("envelope version", envelope_version, 1, archive_envelope_version);
  const auto stored_crc = static_cast<std::uint32_t>(get(p + 36, 4));
  const std::uint32_t crc = crc32c(p, 36);
  if (envelope_version == 0 || stored_crc != crc)
    throw corrupt_archive("corrupt archive: the envelope header fails its checksum (stored " +
                          hex32(stored_crc) + ", computed " + hex32(crc) + ")");
  if (get(p + 32, 4) != 0) throw corrupt_archive("corrupt archive: reserved envelope bytes are not zero");
  header h;
  h.info.format_version = static_cast<std::uint16_t>(get(p + 12, 2));
  if (h.info.format_version == 0 || h.info.format_version > archive_format_version)
    throw_unknown_number("format version", h.info.format_version, 1, archive_format_version);
  const auto type = static_cast<std::uint16_t>(get(p + 10, 2));
  h.info.type = static_cast<archive_type>(type);
  if (to_string(h.info.type) == "unknown")
    throw_unknown_number("object type", type, 1, static_cast<unsigned>(archive_type::funnel_model));
  const auto format = static_cast<std::uint8_t>(p[14]);
  h.info.format = static_cast<archive_format>(format);
  if (to_string(h.info.format) == "unknown")
    throw_unknown_number("archive format", format, 1, static_cast<unsigned>(archive_format::xml));
  const auto platform = static_cast<std::uint8_t>(p[15]);
  if (h.info.format == archive_format::binary) {
    if (platform != platform_code())
      throw archive_error("the binary archive was written on another platform (" +
                          describe_platform(platform) + "; this one is " +
                          describe_platform(platform_code()) +
                          "): binary archives stay on one platform, save as 'text' or 'xml' to move files "
                          "between machines");
  } else if (platform != 0) {
    throw corrupt_archive("corrupt archive: platform byte set in a " + std::string(to_string(h.info.format)) +
                          " archive");
  }
  h.info.payload_bytes = get(p + 16, 8);
  h.metadata_bytes = static_cast<std::uint32_t>(get(p + 24, 4));
  if (h.metadata_bytes > archive_max_metadata_bytes)
    throw corrupt_archive("corrupt archive: metadata of " + std::to_string(h.metadata_bytes) +
                          " bytes, more than the limit of " + std::to_string(archive_max_metadata_bytes));
  h.checksum = static_cast<std::uint32_t>(get(p + 28, 4));
  return h;
}

// Checks the CRC of a body (metadata then payload) and returns its envelope, viewing `body`.
envelope finish(header h, std::string_view body) {
  const std::string_view metadata = body.substr(0, h.metadata_bytes), payload = body.substr(h.metadata_bytes);
  const std::uint32_t crc = body_crc(metadata, payload);
  if (crc != h.checksum)
    throw corrupt_archive("corrupt archive: the " + std::string(to_string(h.info.type)) +
                          " archive fails its checksum (stored " + hex32(h.checksum) + ", computed " +
                          hex32(crc) + "): the file is damaged");
  envelope env;
  env.info = std::move(h.info);
  env.info.metadata.assign(metadata);
  env.external = body;
  env.metadata_bytes = h.metadata_bytes;
  return env;
}

// The same for a body read into memory, which the envelope then owns.
envelope finish_owned(const header& h, std::string body) {
  auto env = finish(h, body);
  env.external = {};
  env.storage = std::move(body);
  return env;
}

std::string size_mismatch(const header& h, std::uint64_t have) {
  const std::uint64_t want = header_bytes + h.body_bytes();
  if (have < want)
    return "corrupt archive: truncated: the envelope announces " + std::to_string(want) +
           " bytes, there are " + std::to_string(have);
  return "corrupt archive: " + std::to_string(have - want) + " unexpected bytes after the " +
         std::to_string(want) + "-byte archive";
}

fs::filesystem_error io_error(const char* what, const fs::path& path, int err) {
  return fs::filesystem_error(what, path, std::error_code(err != 0 ? err : EIO, std::generic_category()));
}

std::string random_suffix() {
  static std::atomic<std::uint64_t> counter{0};
  std::random_device rd;
  const std::uint64_t r =
      (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ (counter++ * 0x9E3779B97F4A7C15ull);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(r));
  return buf;
}

thread_local const payload_streambuf* current = nullptr;

} // namespace

std::array<char, header_bytes> make_header(archive_type type, archive_format format,
                                           std::string_view metadata, std::string_view payload) {
  if (metadata.size() > archive_max_metadata_bytes)
    throw archive_error("archive metadata is limited to " + std::to_string(archive_max_metadata_bytes) +
                        " bytes, got " + std::to_string(metadata.size()));
  std::array<char, header_bytes> h{};
  std::memcpy(h.data(), magic.data(), magic.size());
  put16(h.data() + 8, archive_envelope_version);
  put16(h.data() + 10, static_cast<std::uint16_t>(type));
  put16(h.data() + 12, archive_format_version);
  h[14] = static_cast<char>(format);
  h[15] = static_cast<char>(format == archive_format::binary ? platform_code() : 0);
  put64(h.data() + 16, payload.size());
  put32(h.data() + 24, static_cast<std::uint32_t>(metadata.size()));
  put32(h.data() + 28, body_crc(metadata, payload));
  put32(h.data() + 32, 0);
  put32(h.data() + 36, crc32c(h.data(), 36));
  return h;
}

envelope read_envelope(std::string_view bytes) {
  if (bytes.size() < header_bytes) too_short(bytes);
  const header h = decode_header(bytes.data());
  if (bytes.size() != header_bytes + h.body_bytes()) throw corrupt_archive(size_mismatch(h, bytes.size()));
  return finish(h, bytes.substr(header_bytes));
}

envelope read_envelope(const fs::path& path) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) throw fs::filesystem_error("smartfunnel: cannot read archive", path, ec);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error("smartfunnel: cannot open archive", path, errno);
  std::array<char, header_bytes> head{};
  in.read(head.data(), static_cast<std::streamsize>(std::min<std::uintmax_t>(size, header_bytes)));
  if (size < header_bytes) too_short(std::string_view(head.data(), static_cast<std::size_t>(size)));
  if (!in) throw io_error("smartfunnel: cannot read archive", path, errno);
  const header h = decode_header(head.data());
  if (size != header_bytes + h.body_bytes()) throw corrupt_archive(size_mismatch(h, size));
  // The file really holds these bytes, so allocating them is bounded by the file.
  std::string body(static_cast<std::size_t>(h.body_bytes()), '\0');
  in.read(body.data(), static_cast<std::streamsize>(body.size()));
  if (static_cast<std::uint64_t>(in.gcount()) != body.size())
    throw io_error("smartfunnel: cannot read archive (did it change while being read?)", path, errno);
  return finish_owned(h, std::move(body));
}

envelope read_envelope(std::istream& in) {
  std::array<char, header_bytes> head{};
  in.read(head.data(), header_bytes);
  const auto got = static_cast<std::size_t>(in.gcount());
  if (got < header_bytes) {
    if (got == 0) throw corrupt_archive("corrupt archive: the stream ended before any archive");
    too_short(std::string_view(head.data(), got));
  }
  const header h = decode_header(head.data());
  // Read in chunks: a damaged length field must not allocate more than the stream really holds
  // (plus one chunk).
  constexpr std::size_t chunk = std::size_t{16} << 20;
  const std::uint64_t want = h.body_bytes();
  std::string body;
  while (body.size() < want) {
    const std::size_t step = static_cast<std::size_t>(std::min<std::uint64_t>(want - body.size(), chunk));
    const std::size_t at = body.size();
    body.resize(at + step);
    in.read(body.data() + at, static_cast<std::streamsize>(step));
    if (static_cast<std::size_t>(in.gcount()) != step)
      throw corrupt_archive(size_mismatch(h, header_bytes + at + static_cast<std::size_t>(in.gcount())));
  }
  return finish_owned(h, std::move(body));
}

void expect_type(const archive_info& info, archive_type wanted) {
  if (info.type != wanted)
    throw wrong_archive_type("the archive holds a smartfunnel " + std::string(to_string(info.type)) +
                             ", not the " + std::string(to_string(wanted)) + " asked for");
}

void check_boost_header(std::string_view payload, archive_format format) {
  static constexpr std::string_view signature = "serialization::archive";
  auto version_at_least = [](unsigned v) {
    if (v < min_boost_library_version)
      throw corrupt_archive("corrupt archive: Boost archive library version " + std::to_string(v) +
                            " is older than any smartfunnel wrote (" +
                            std::to_string(min_boost_library_version) + ")");
    const boost::serialization::library_version_type boost_version = boost::archive::BOOST_ARCHIVE_VERSION();
    const auto newest = static_cast<unsigned>(static_cast<std::uint_least16_t>(boost_version));
    if (v > newest)
      throw_unknown_number("Boost archive library version", v, min_boost_library_version, newest);
  };
  auto parse_decimal = [](std::string_view s, std::size_t at) {
    unsigned v = 0;
    std::size_t digits = 0;
    while (at < s.size() && digits < 6 && s[at] >= '0' && s[at] <= '9') {
      v = v * 10 + static_cast<unsigned>(s[at++] - '0');
      ++digits;
    }
    if (digits == 0)
      throw corrupt_archive("corrupt archive: the Boost archive header has no library version");
    return v;
  };
  switch (format) {
  case archive_format::binary: {
    // size_t length 22, the signature, then the library version as one byte followed by a zero.
    const std::size_t n = signature.size();
    if (payload.size() < sizeof n + n + 2 || std::memcmp(payload.data(), &n, sizeof n) != 0 ||
        payload.substr(sizeof n, n) != signature)
      throw corrupt_archive("corrupt archive: the payload does not start with a Boost binary archive header");
    const auto v = static_cast<unsigned char>(payload[sizeof n + n]);
    version_at_least(v);
    if (payload[sizeof n + n + 1] != '\0')
      throw corrupt_archive("corrupt archive: malformed Boost archive library version");
    break;
  }
  case archive_format::text: {
    static constexpr std::string_view prefix = "22 serialization::archive ";
    if (payload.substr(0, prefix.size()) != prefix)
      throw corrupt_archive("corrupt archive: the payload does not start with a Boost text archive header");
    version_at_least(parse_decimal(payload, prefix.size()));
    break;
  }
  case archive_format::xml: {
    static constexpr std::string_view key = "signature=\"serialization::archive\" version=\"";
    const std::string_view head = payload.substr(0, 512);
    const auto at = head.find(key);
    if (payload.substr(0, 5) != "<?xml" || at == std::string_view::npos)
      throw corrupt_archive("corrupt archive: the payload does not start with a Boost XML archive header");
    version_at_least(parse_decimal(head, at + key.size()));
    break;
  }
  }
}

void check_trailing(std::string_view rest, archive_format format) {
  const bool blank = std::all_of(rest.begin(), rest.end(),
                                 [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; });
  if (!rest.empty() && (format == archive_format::binary || !blank))
    throw corrupt_archive("corrupt archive: " + std::to_string(rest.size()) +
                          " unexpected bytes after the object in the payload");
}

void rethrow_as_archive_error(std::string_view type_name) {
  const std::string type(type_name);
  try {
    throw;
  } catch (const archive_error&) {
    throw;
  } catch (const boost::archive::archive_exception& e) {
    switch (e.code) {
    case boost::archive::archive_exception::unsupported_version:
    case boost::archive::archive_exception::unsupported_class_version:
      throw newer_archive_format("cannot load the " + type + ": " + e.what() +
                                 " (written by a newer Boost or smartfunnel?)");
    case boost::archive::archive_exception::incompatible_native_format:
      throw archive_error("cannot load the " + type + ": " + e.what() +
                          " (binary archives stay on one platform; use 'text' or 'xml' between machines)");
    default:
      throw corrupt_archive("corrupt archive: cannot load the " + type + ": " + e.what());
    }
  } catch (const std::bad_alloc&) {
    throw; // real memory exhaustion: every size read from the payload is checked before allocating
  } catch (const std::exception& e) {
    throw corrupt_archive("corrupt archive: cannot load the " + type + ": " + e.what());
  }
}

void write_stream(std::ostream& out, std::span<const std::string_view> parts) {
  for (const auto& part : parts) out.write(part.data(), static_cast<std::streamsize>(part.size()));
  out.flush();
  if (!out) throw std::ios_base::failure("smartfunnel::save: writing the archive to the stream failed");
}

#ifdef SMARTFUNNEL_POSIX_FILES

namespace {

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

[[noreturn]] void refuse(const std::string& reason, const fs::path& target, std::errc code) {
  throw save_target_error(reason, target, std::make_error_code(code));
}

// What a file that is not a regular one is, for the error.
std::string kind_of_file(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

[[noreturn]] void refuse_not_regular(const fs::path& target, const std::string& what, mode_t mode) {
  refuse(what + " is " + kind_of_file(mode) + ", not a regular file: save only replaces regular files",
         target, S_ISDIR(mode) ? std::errc::is_a_directory : std::errc::invalid_argument);
}

bool in_group(gid_t gid) {
  if (gid == ::getegid()) return true;
  const int n = ::getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  const int got = ::getgroups(n, groups.data());
  return got > 0 && std::find(groups.begin(), groups.begin() + got, gid) != groups.begin() + got;
}

// Whether the caller may write a file of this mode and owner, from the mode bits (POSIX: the owner
// bits for the owner, else the group bits for a member, else the others' bits). Root may write any
// file, but a file without any write bit was made read-only on purpose: refused too. access(2) is
// not used, since it says yes to root for every file.
bool may_write(const struct stat& st) {
  const uid_t uid = ::geteuid();
  if (uid == 0) return (st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) != 0;
  if (uid == st.st_uid) return (st.st_mode & S_IWUSR) != 0;
  if (in_group(st.st_gid)) return (st.st_mode & S_IWGRP) != 0;
  return (st.st_mode & S_IWOTH) != 0;
}

// The file save replaces for `path`: `path` itself when it does not exist yet or is a regular file
// the caller may write; the file a symbolic link resolves to when that is one. Anything else is a
// save_target_error naming `path`. `existing` receives the replaced file's status (st_mode 0 for a
// new file).
fs::path checked_target(const fs::path& path, struct stat& existing) {
  existing = {};
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return path; // a new file: creating it in its directory is the test
    throw io_error("smartfunnel::save: cannot inspect the target", path, err);
  }
  fs::path target = path;
  std::string what = quoted(path);
  if (S_ISLNK(st.st_mode)) {
    if (::stat(path.c_str(), &st) != 0) {
      const int err = errno;
      if (err == ENOENT)
        refuse(
            what +
                " is a symbolic link to a file that does not exist: save does not create files through links",
            path, std::errc::no_such_file_or_directory);
      if (err == ELOOP)
        refuse(what + " is a symbolic link in a loop", path, std::errc::too_many_symbolic_link_levels);
      throw io_error("smartfunnel::save: cannot inspect the target", path, err);
    }
    std::error_code ec;
    target = fs::canonical(path, ec);
    if (ec) throw fs::filesystem_error("smartfunnel::save: cannot resolve the symbolic link", path, ec);
    what += " (a symbolic link to " + quoted(target) + ")";
    if (::lstat(target.c_str(), &st) != 0)
      throw io_error("smartfunnel::save: cannot inspect the target", path, errno);
  }
  if (!S_ISREG(st.st_mode)) refuse_not_regular(path, what, st.st_mode);
  if (!may_write(st))
    refuse(what + " is read-only for this user (mode " + octal_mode(st.st_mode) + ", owner uid " +
               std::to_string(st.st_uid) + ", this process uid " + std::to_string(::geteuid()) +
               "): save does not replace a file it may not write",
           path, std::errc::permission_denied);
  existing = st;
  return target;
}

} // namespace

void write_file_atomically(const fs::path& path, std::span<const std::string_view> parts) {
  struct stat existing {};
  const fs::path target = checked_target(path, existing);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // Every error names `path` (what the caller asked for); the temporary file only in the message.
  auto failed = [&path](const std::string& what, const fs::path& tmp, int err) {
    return io_error(("smartfunnel::save: " + what + " (temporary file " + quoted(tmp) + ")").c_str(), path,
                    err);
  };
  fs::path tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp = target;
    tmp += ".tmp-" + random_suffix();
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt > 8))
      throw failed("cannot create a temporary file", tmp, errno);
  }
  // Until the rename, any error closes and removes the temporary file; the target is untouched.
  struct cleanup {
    int& fd;
    const fs::path& tmp;
    bool committed = false;
    ~cleanup() {
      if (committed) return;
      if (fd >= 0) ::close(fd);
      ::unlink(tmp.c_str());
    }
  } guard{fd, tmp};
  if (existing.st_mode != 0)
    (void)::fchmod(fd, existing.st_mode & 07777); // keep the replaced file's permissions
  for (const auto& part : parts) {
    const char* p = part.data();
    std::size_t left = part.size();
    while (left > 0) {
      const ::ssize_t n = ::write(fd, p, std::min<std::size_t>(left, std::size_t{1} << 30));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw failed("cannot write the archive", tmp, errno);
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  if (::fsync(fd) != 0) throw failed("cannot flush the archive to disk", tmp, errno);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) throw failed("cannot close the archive", tmp, errno);
  if (::rename(tmp.c_str(), target.c_str()) != 0)
    throw failed("cannot rename the temporary file over the target", tmp, errno);
  guard.committed = true;
  // Make the rename itself durable (best effort: some file systems cannot sync a directory).
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

#else

void write_file_atomically(const fs::path& path, std::span<const std::string_view> parts) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (fs::exists(st) && !fs::is_regular_file(st))
    throw save_target_error("'" + path.string() + "' is not a regular file: save only replaces regular files",
                            path, std::make_error_code(std::errc::invalid_argument));
  if (fs::exists(st) && (st.permissions() & fs::perms::owner_write) == fs::perms::none)
    throw save_target_error("'" + path.string() +
                                "' is read-only: save does not replace a file it may not write",
                            path, std::make_error_code(std::errc::permission_denied));
  fs::path tmp = path;
  tmp += ".tmp-" + random_suffix();
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) throw io_error("smartfunnel::save: cannot create a temporary file", path, errno);
      for (const auto& part : parts) out.write(part.data(), static_cast<std::streamsize>(part.size()));
      out.flush();
      if (!out) throw io_error("smartfunnel::save: cannot write the archive", path, errno);
    }
    fs::rename(tmp, path);
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

#endif

// -- helpers of the serialize functions ------------------------------------------------------------

const payload_streambuf* current_payload() noexcept { return current; }

payload_scope::payload_scope(const payload_streambuf& payload) noexcept : previous_(current) {
  current = &payload;
}

payload_scope::~payload_scope() { current = previous_; }

void throw_corrupt(const std::string& what) { throw corrupt_archive(what); }

void throw_unknown_number(const std::string& what, std::uint64_t number, std::uint64_t first,
                          std::uint64_t last) {
  const std::string range =
      first == last ? std::to_string(first) : std::to_string(first) + " to " + std::to_string(last);
  if (number > last && number - last <= newer_version_margin)
    throw newer_archive_format("the archive has " + what + " " + std::to_string(number) +
                               "; this smartfunnel reads " + range +
                               ": it was written by a newer smartfunnel (upgrade smartfunnel to load it)");
  throw corrupt_archive(
      "corrupt archive: " + what + " " + std::to_string(number) + " is neither one this smartfunnel reads (" +
      range + ") nor a plausible newer one (at most " + std::to_string(newer_version_margin) + " above " +
      std::to_string(last) + "): the file is damaged or was not written by smartfunnel");
}

void throw_newer_class(const char* type, unsigned version, unsigned known) {
  throw_unknown_number(std::string(type) + " class version", version, 1, known);
}

std::uint64_t peek_text_length(std::string_view rest) noexcept {
  std::size_t i = 0;
  while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\n' || rest[i] == '\r' || rest[i] == '\t')) ++i;
  if (i < rest.size() && (rest[i] == '-' || rest[i] == '+')) return std::numeric_limits<std::uint64_t>::max();
  std::uint64_t v = 0;
  for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9'; ++i) {
    if (v > (std::numeric_limits<std::uint64_t>::max() - 9) / 10)
      return std::numeric_limits<std::uint64_t>::max();
    v = v * 10 + static_cast<std::uint64_t>(rest[i] - '0');
  }
  return v;
}

std::string double_to_text(double x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return {buf, r.ptr};
}

double double_from_text(std::string_view s, const char* name) {
  double x = 0.0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), x);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size())
    throw corrupt_archive("corrupt archive: " + std::string(name) + " is not a number: '" +
                          std::string(s.substr(0, 40)) + "'");
  return x;
}

} // namespace smartfunnel::detail
