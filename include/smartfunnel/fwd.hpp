#pragma once
/// \file fwd.hpp
/// Forward declarations of smartfunnel's public types.

#include <cstdint>

namespace smartfunnel {
using stage_code = std::uint16_t;
using time_point = std::int64_t;
class funnel;
class event_log;
class event_log_builder;
class dictionary;
struct event_columns;
struct ingest_options;
struct data_quality_report;
struct fit_options;
struct fit_statistics;
struct stage_counts;
struct stage_estimate;
struct chain_result;
struct group_fit;
class funnel_model;
struct simulation_spec;
struct simulated_events;
} // namespace smartfunnel
