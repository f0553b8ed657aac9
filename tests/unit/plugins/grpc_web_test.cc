#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <vector>

#include "http/http1_parser.h"
#include "plugins/grpc/grpc_web_codec.h"
#include "plugins/registry.h"
#include "proxy/plugin.h"

namespace gatehouse::plugins::grpc_web {
namespace {

// --- content types

TEST(GrpcWebContentType, RecognisesBinaryAndTextWithTheirSuffixes) {
  struct Case {
    std::string_view in;
    Mode mode;
    std::string_view upstream;
    std::string_view client;
  };
  const Case cases[] = {
      {"application/grpc-web", Mode::kBinary, "application/grpc", "application/grpc-web"},
      {"application/grpc-web+proto", Mode::kBinary, "application/grpc+proto",
       "application/grpc-web+proto"},
      {"application/grpc-web+json", Mode::kBinary, "application/grpc+json",
       "application/grpc-web+json"},
      {"application/grpc-web-text", Mode::kText, "application/grpc", "application/grpc-web-text"},
      {"application/grpc-web-text+proto", Mode::kText, "application/grpc+proto",
       "application/grpc-web-text+proto"},
      {"Application/GRPC-Web-Text+Proto", Mode::kText, "application/grpc+proto",
       "application/grpc-web-text+proto"},
      {"application/grpc-web+proto; charset=utf-8", Mode::kBinary, "application/grpc+proto",
       "application/grpc-web+proto"},
  };
  for (const Case& c : cases) {
    ContentType t = parse_content_type(c.in);
    EXPECT_EQ(t.mode, c.mode) << c.in;
    EXPECT_EQ(upstream_content_type(t), c.upstream) << c.in;
    EXPECT_EQ(client_content_type(t), c.client) << c.in;
  }
}

TEST(GrpcWebContentType, OtherTypesAreNotGrpcWeb) {
  for (std::string_view v : {"application/grpc", "application/grpc+proto", "application/json", "",
                             "application/grpc-webx", "application/grpc-web+xml",
                             "application/grpc-web-textual", "text/plain"}) {
    EXPECT_EQ(parse_content_type(v).mode, Mode::kNone) << v;
  }
  // Not gRPC-Web: the gateway's own errors keep application/grpc.
  EXPECT_EQ(client_content_type(ContentType{}), "application/grpc");
}

TEST(GrpcWebContentType, GrpcResponsesAreRecognised) {
  EXPECT_TRUE(is_grpc_content_type("application/grpc"));
  EXPECT_TRUE(is_grpc_content_type("application/grpc+proto"));
  EXPECT_TRUE(is_grpc_content_type("Application/gRPC; charset=x"));
  EXPECT_FALSE(is_grpc_content_type("application/grpc-web"));
  EXPECT_FALSE(is_grpc_content_type("application/grpc-web-text+proto"));
  EXPECT_FALSE(is_grpc_content_type("application/grpcx"));
  EXPECT_FALSE(is_grpc_content_type("text/html"));
}

// --- base64

std::string encode_all(std::string_view data) {
  Base64Encoder e;
  std::string out;
  e.update(data, out);
  e.finish(out);
  return out;
}

TEST(GrpcWebBase64, EncodesRfc4648Vectors) {
  EXPECT_EQ(encode_all(""), "");
  EXPECT_EQ(encode_all("f"), "Zg==");
  EXPECT_EQ(encode_all("fo"), "Zm8=");
  EXPECT_EQ(encode_all("foo"), "Zm9v");
  EXPECT_EQ(encode_all("foob"), "Zm9vYg==");
  EXPECT_EQ(encode_all("fooba"), "Zm9vYmE=");
  EXPECT_EQ(encode_all("foobar"), "Zm9vYmFy");
  EXPECT_EQ(encode_all(std::string("\x00\xff\xfe", 3)), "AP/+");
}

TEST(GrpcWebBase64, StreamingEncodeEqualsOneShotWhateverTheSplits) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  const std::string whole = encode_all(data);
  for (std::size_t step : {1u, 2u, 3u, 4u, 5u, 7u, 64u, 999u}) {
    Base64Encoder e;
    std::string out;
    for (std::size_t i = 0; i < data.size(); i += step)
      e.update(std::string_view(data).substr(i, step), out);
    e.finish(out);
    EXPECT_EQ(out, whole) << "step " << step;
  }
}

TEST(GrpcWebBase64, FinishPadsAndStartsAfresh) {
  Base64Encoder e;
  std::string out;
  e.update("f", out);
  EXPECT_EQ(out, "");  // waits for more
  e.finish(out);
  e.update("fo", out);
  e.finish(out);
  EXPECT_EQ(out, "Zg==Zm8=");  // padded segments, one per flush
}

std::string decode_all(std::string_view text, bool* ok = nullptr) {
  Base64Decoder d;
  std::string out;
  bool good = d.update(text, out) && d.finish(out);
  if (ok != nullptr) *ok = good;
  return out;
}

TEST(GrpcWebBase64, DecodesVectorsAndConcatenatedPaddedSegments) {
  bool ok = false;
  EXPECT_EQ(decode_all("Zm9vYmFy", &ok), "foobar");
  EXPECT_TRUE(ok);
  EXPECT_EQ(decode_all("Zm9vYg==", &ok), "foob");
  EXPECT_TRUE(ok);
  EXPECT_EQ(decode_all("Zg==Zm8=Zm9v", &ok), "ffofoo");
  EXPECT_TRUE(ok);
  EXPECT_EQ(decode_all("Zm9v\r\nYmE=\n", &ok), "fooba");
  EXPECT_TRUE(ok);
  EXPECT_EQ(decode_all("AP/+", &ok), std::string("\x00\xff\xfe", 3));
  EXPECT_TRUE(ok);
  EXPECT_EQ(decode_all("", &ok), "");
  EXPECT_TRUE(ok);
  EXPECT_EQ(decode_all("Zm8", &ok), "fo");  // an unpadded end is accepted
  EXPECT_TRUE(ok);
}

TEST(GrpcWebBase64, StreamingDecodeEqualsOneShotWhateverTheSplits) {
  const std::string text = "Zg==Zm8=Zm9vYmFyAP/+Zm9vYg==";
  const std::string whole = decode_all(text);
  for (std::size_t step = 1; step <= text.size(); ++step) {
    Base64Decoder d;
    std::string out;
    for (std::size_t i = 0; i < text.size(); i += step)
      ASSERT_TRUE(d.update(std::string_view(text).substr(i, step), out)) << step;
    ASSERT_TRUE(d.finish(out));
    EXPECT_EQ(out, whole) << "step " << step;
  }
}

TEST(GrpcWebBase64, RefusesWhatIsNotBase64) {
  for (std::string_view bad : {"Zm9v!", "Z===", "Zg=x", "=Zg=", "Zm9vY", "Zm9=v", "Zg", "Zm-_"}) {
    bool ok = true;
    decode_all(bad, &ok);
    // "Zg" is an unpadded end of 2 characters: fine.
    EXPECT_EQ(ok, bad == "Zg") << bad;
  }
  Base64Decoder d;
  std::string out;
  EXPECT_FALSE(d.update("Zg=", out) && d.finish(out));  // padding cut short
  EXPECT_FALSE(d.update("Zm9v", out));                  // and it stays failed
}

TEST(GrpcWebBase64, RoundTripsArbitraryBytes) {
  std::string data;
  for (int i = 0; i < 4096; ++i) data.push_back(static_cast<char>((i * 131) ^ (i >> 3)));
  for (std::size_t n : {0u, 1u, 2u, 3u, 4u, 100u, 4096u}) {
    std::string part = data.substr(0, n);
    bool ok = false;
    EXPECT_EQ(decode_all(encode_all(part), &ok), part);
    EXPECT_TRUE(ok);
  }
}

// --- trailer frame

TEST(GrpcWebTrailerFrame, LowerCaseNameColonValueLines) {
  std::string out = "x";
  append_trailer_frame(out,
                       "Grpc-Status: 0\r\ngrpc-message:  all good \r\nX-Trailer-One:alpha\r\n");
  const std::string fields = "grpc-status:0\r\ngrpc-message:all good\r\nx-trailer-one:alpha\r\n";
  std::string want = "x";
  want.push_back(static_cast<char>(0x80));
  want.append({0, 0, 0, static_cast<char>(fields.size())});
  want += fields;
  EXPECT_EQ(out, want);
}

TEST(GrpcWebTrailerFrame, LengthIsBigEndianAndEmptyFieldsGiveAnEmptyFrame) {
  std::string out;
  append_trailer_frame(out, "");
  EXPECT_EQ(out, std::string("\x80\x00\x00\x00\x00", 5));
  out.clear();
  std::string value(300, 'v');
  append_trailer_frame(out, "a: " + value + "\r\n");
  ASSERT_EQ(out.size(), 5 + 2 + 300 + 2);
  EXPECT_EQ(static_cast<unsigned char>(out[3]), 1);  // 304 = 0x130
  EXPECT_EQ(static_cast<unsigned char>(out[4]), 0x30);
}

TEST(GrpcWebTrailerFrame, ChunkedDecoderHandsOverTheTrailerSection) {
  std::string body = "5\r\nhello\r\n0\r\ngrpc-status: 0\r\nx-a: b\r\n\r\nNEXT";
  std::string trailers;
  http::ChunkedDecoder d;
  d.capture_trailers(&trailers);
  std::size_t consumed = 0;
  uint64_t payload = 0;
  // Byte by byte: the capture follows the decoder across pieces.
  std::size_t total = 0;
  http::ChunkedDecoder::Result r = http::ChunkedDecoder::Result::kNeedMore;
  while (r == http::ChunkedDecoder::Result::kNeedMore && total < body.size()) {
    r = d.feed(body.data() + total, 1, consumed, payload);
    total += consumed;
  }
  EXPECT_EQ(r, http::ChunkedDecoder::Result::kDone);
  EXPECT_EQ(total, body.size() - 4);
  EXPECT_EQ(payload, 5u);
  EXPECT_EQ(trailers, "grpc-status: 0\r\nx-a: b\r\n");
}

// --- the plugin

struct World {
  config::Config config;
  std::vector<std::string> errors;
  std::unique_ptr<proxy::Plugin> build(const std::string& yaml) {
    const PluginKind* kind = find_plugin_kind("grpc_web");
    EXPECT_NE(kind, nullptr);
    return kind->create(YAML::Load(yaml), PluginEnv{.config = config, .scope = "route:t"},
                        [&](const YAML::Node&, std::string message) { errors.push_back(message); });
  }
};

struct Request {
  std::string raw;
  http::RequestHead head;
  proxy::RequestState state;
  proxy::RequestContext ctx;
};

std::unique_ptr<Request> request(const std::string& content_type) {
  auto r = std::make_unique<Request>();
  r->raw = "POST /orders.v1.Orders/Echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n";
  if (!content_type.empty()) r->raw += "Content-Type: " + content_type + "\r\n";
  r->raw += "\r\n";
  std::size_t scanned = 0;
  std::size_t size = http::find_head_end(r->raw.data(), r->raw.size(), scanned);
  http::ParseError err;
  EXPECT_EQ(http::parse_request_head(r->raw.data(), size, r->head, err),
            http::ParseStatus::kComplete);
  r->ctx.head = &r->head;
  r->ctx.state = &r->state;
  return r;
}

TEST(GrpcWebPlugin, ConfigIsAnEmptyMap) {
  World w;
  EXPECT_TRUE(w.build("{}"));
  EXPECT_TRUE(w.build("~"));
  EXPECT_FALSE(w.build("{mode: text}"));
  ASSERT_EQ(w.errors.size(), 1u);
  EXPECT_NE(w.errors[0].find("unknown key 'mode'"), std::string::npos);
  EXPECT_FALSE(w.build("[1]"));
}

TEST(GrpcWebPlugin, MarksGrpcWebRequestsAndRewritesTheUpstreamContentType) {
  World w;
  auto plugin = w.build("{}");
  ASSERT_TRUE(plugin);
  EXPECT_EQ(plugin->stage(), proxy::Stage::kTransform);
  auto r = request("application/grpc-web-text+proto");
  proxy::LocalReply reply;
  EXPECT_TRUE(plugin->on_request(r->ctx, reply));
  EXPECT_TRUE(r->state.grpc_web);
  proxy::HeaderEdits edits;
  plugin->on_upstream_request(r->ctx, edits);
  ASSERT_EQ(edits.set.size(), 1u);
  EXPECT_EQ(edits.set[0].first, "content-type");
  EXPECT_EQ(edits.set[0].second, "application/grpc+proto");
  EXPECT_TRUE(edits.drops("Content-Type"));
}

TEST(GrpcWebPlugin, LeavesOtherRequestsAlone) {
  World w;
  auto plugin = w.build("{}");
  ASSERT_TRUE(plugin);
  for (std::string ct : {"application/grpc", "application/json", ""}) {
    auto r = request(ct);
    proxy::LocalReply reply;
    EXPECT_TRUE(plugin->on_request(r->ctx, reply));
    EXPECT_FALSE(r->state.grpc_web) << ct;
    proxy::HeaderEdits edits;
    plugin->on_upstream_request(r->ctx, edits);
    EXPECT_TRUE(edits.empty()) << ct;
  }
}

}  // namespace
}  // namespace gatehouse::plugins::grpc_web
