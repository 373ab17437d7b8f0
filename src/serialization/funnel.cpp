// Archives of funnel and fit_options.
#include "archive.hpp"

#include "smartfunnel/serialization/fit_options.hpp"
#include "smartfunnel/serialization/funnel.hpp"

namespace smartfunnel::detail {

funnel serialization_access::placeholder_funnel() {
  return funnel({"open"}, {"won"}, {"lost"}, "placeholder");
}

} // namespace smartfunnel::detail

SMARTFUNNEL_INSTANTIATE_SERIALIZATION(smartfunnel::funnel);
SMARTFUNNEL_INSTANTIATE_SERIALIZATION(smartfunnel::fit_options);
