// `ip_restriction`: allow and deny lists of CIDR blocks, checked against the
// client address as trusted_proxies resolve it (RequestContext::client_ip).
//
//   - ip_restriction: {allow: [10.0.0.0/8, "2001:db8::/32"], deny: [10.1.2.3]}
//
// `deny` wins over `allow`; with an `allow` list every other address is
// refused. IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
#include <string>
#include <vector>

#include "core/ip.h"
#include "plugins/protection/common.h"
#include "plugins/protection/protection.h"

namespace gatehouse::plugins::protection {
namespace {

constexpr std::string_view kRefused = "client address not allowed";

class IpRestriction : public proxy::Plugin {
 public:
  IpRestriction(std::vector<core::Cidr> allow, std::vector<core::Cidr> deny)
      : allow_(std::move(allow)), deny_(std::move(deny)) {}

  proxy::Stage stage() const override { return proxy::Stage::kEarly; }

  bool on_request(const proxy::RequestContext& ctx, proxy::LocalReply& reply) const override {
    // One inet_pton per request (tens of nanoseconds): the engine hands the
    // address over as text.
    const std::optional<core::IpAddr> ip = parse_client_ip(ctx.client_ip);
    const char* why = nullptr;
    if (!ip) {
      why = "ip_restriction: client address unreadable";  // fail closed
    } else if (core::contains_any(deny_, *ip)) {
      why = "ip_restriction: client address in deny list";
    } else if (!allow_.empty() && !core::contains_any(allow_, *ip)) {
      why = "ip_restriction: client address not in allow list";
    }
    if (why == nullptr) return true;
    reply.status = 403;
    reply.detail.assign(kRefused);
    if (ctx.state != nullptr) ctx.state->log_detail = why;
    return false;
  }

 private:
  // The address as text, as the engine renders it: "10.1.2.3", "::1",
  // "::ffff:10.1.2.3", possibly bracketed or with an IPv6 zone ("fe80::1%eth0",
  // which inet_pton does not take: the zone does not matter to a CIDR block).
  static std::optional<core::IpAddr> parse_client_ip(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
      text = text.substr(1, text.size() - 2);
    if (std::size_t zone = text.find('%'); zone != std::string_view::npos)
      text = text.substr(0, zone);
    return core::parse_ip(text);
  }

  std::vector<core::Cidr> allow_;
  std::vector<core::Cidr> deny_;
};

// A non-empty list of addresses or CIDR blocks; reports each bad entry.
bool read_blocks(const YAML::Node& node, const std::string& label, const Report& report,
                 std::vector<core::Cidr>& out) {
  if (!node.IsSequence()) {
    report(node, "'" + label + "' must be a list of IP addresses or CIDR blocks");
    return false;
  }
  if (node.size() == 0) {
    report(node, "'" + label + "' must not be empty");
    return false;
  }
  bool ok = true;
  for (const YAML::Node& item : node) {
    std::string error;
    std::optional<core::Cidr> block;
    if (item.IsScalar()) {
      block = core::parse_cidr(item.Scalar(), error);
    } else {
      error = "entries must be IP addresses or CIDR blocks";
    }
    if (!block) {
      report(item, "'" + label + "': " + error);
      ok = false;
      continue;
    }
    out.push_back(*block);
  }
  return ok;
}

}  // namespace

std::unique_ptr<proxy::Plugin> create_ip_restriction(const YAML::Node& config, const PluginEnv&,
                                                     const Report& report) {
  constexpr std::string_view kNeeds = "'ip_restriction' needs a map with 'allow' and/or 'deny'";
  if (!config.IsMap()) {
    report(config, std::string(kNeeds));
    return nullptr;
  }
  bool ok = only_keys(config, {"allow", "deny"}, "ip_restriction", report);
  std::vector<core::Cidr> allow, deny;
  bool given = false;
  for (const auto& kv : config) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    if (key == "allow" || key == "deny") {
      given = true;
      ok = read_blocks(kv.second, key, report, key == "allow" ? allow : deny) && ok;
    }
  }
  if (!given) {
    report(config, std::string(kNeeds));
    ok = false;
  }
  if (!ok) return nullptr;
  return std::make_unique<IpRestriction>(std::move(allow), std::move(deny));
}

}  // namespace gatehouse::plugins::protection
