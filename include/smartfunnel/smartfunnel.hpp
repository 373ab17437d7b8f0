#pragma once
/// \file smartfunnel.hpp
/// Umbrella header: the whole public core. Optional extras (serialization, printing) are separate.

#include "smartfunnel/absorbing_chain.hpp"
#include "smartfunnel/activity_log.hpp"
#include "smartfunnel/backtest.hpp"
#include "smartfunnel/calibration.hpp"
#include "smartfunnel/error.hpp"
#include "smartfunnel/event_log.hpp"
#include "smartfunnel/fit_options.hpp"
#include "smartfunnel/fit_statistics.hpp"
#include "smartfunnel/forecast.hpp"
#include "smartfunnel/funnel.hpp"
#include "smartfunnel/funnel_model.hpp"
#include "smartfunnel/semi_markov.hpp"
#include "smartfunnel/simulate.hpp"
#include "smartfunnel/stage_estimate.hpp"
#include "smartfunnel/version.hpp"
