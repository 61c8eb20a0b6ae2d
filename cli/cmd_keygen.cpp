// `mqkit keygen --out NAME`: a CURVE key pair as NAME.pub and NAME.key.
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "mqkit/security.hpp"

namespace mqkit::cli {

void setup_keygen(CLI::App& app, Runner& runner) {
  auto* sub = app.add_subcommand(
      "keygen", "Make a CURVE key pair: NAME.pub (share it) and NAME.key (secret, mode 0600)");
  auto name = std::make_shared<std::string>();
  sub->add_option("--out", *name, "Path and name of the pair, e.g. keys/proxy")->required();
  sub->footer(
      "The files are certificates in the format of czmq and pyzmq (zmq.auth): Z85 keys under "
      "'curve', public-key in both, secret-key only in NAME.key.");
  sub->callback([&runner, name] {
    runner = [name] {
      const auto keys = generate_key_pair();
      write_key_pair(*name, keys);
      std::printf("%s.pub  %s\n%s.key  (secret, mode 0600)\n", name->c_str(),
                  keys.public_key.c_str(), name->c_str());
      return 0;
    };
  });
}

}  // namespace mqkit::cli
