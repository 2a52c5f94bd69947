# The R baseline of `make bench` (benchmarks/run.py): Harrell's bootstrap validation and KM
# calibration of the study's Cox model with R rms, on the same rows and the same B as
# `cementleak analyze` in the same run.
#
#   Rscript benchmarks/rms_bench.R DESIGN.csv B U M SEED OUT.json
#
# DESIGN.csv: written by run.py from the study's fitted model: columns `time`, `event`, then the
# model's terms, already encoded as numbers (dummies for categories), one row per analysed patient.
# B: bootstrap replicates; U: the horizon (calibrate's u); M: patients per calibration group
# (calibrate's m); SEED: set.seed before the resampling.  Writes the seconds of each step as JSON:
#   library(rms) + library(jsonlite), reading, cph(), validate(fit, B), calibrate(fit, cmethod = "KM", u, m, B).
# rms 6.x: validate.cph and calibrate.cph (cmethod = "KM") refit cph in every replicate through predab.resample.

t_start <- proc.time()[["elapsed"]]
suppressMessages({
  library(survival)
  library(rms)
  library(jsonlite)
})
t_lib <- proc.time()[["elapsed"]]

args <- commandArgs(trailingOnly = TRUE)
stopifnot(length(args) == 6)
path <- args[1]
B <- as.integer(args[2]); u <- as.numeric(args[3]); m <- as.integer(args[4]); seed <- as.integer(args[5])
out <- args[6]

d <- read.csv(path, check.names = FALSE)
terms <- setdiff(names(d), c("time", "event"))
names(d) <- make.names(names(d), unique = TRUE)
X <- setdiff(names(d), c("time", "event"))
t_read <- proc.time()[["elapsed"]]

f <- as.formula(paste("Surv(time, event) ~", paste(X, collapse = " + ")))
fit <- cph(f, data = d, x = TRUE, y = TRUE, surv = TRUE, time.inc = u)
t_fit <- proc.time()[["elapsed"]]

set.seed(seed)
v <- rms::validate(fit, B = B)
t_val <- proc.time()[["elapsed"]]

set.seed(seed + 1)
k <- rms::calibrate(fit, cmethod = "KM", u = u, m = m, B = B)
t_cal <- proc.time()[["elapsed"]]

write_json(list(
  r_version = R.version.string,
  rms_version = as.character(packageVersion("rms")),
  survival_version = as.character(packageVersion("survival")),
  n = nrow(d), events = sum(d$event), terms = terms, B = B, u = u, m = m,
  coef = unname(coef(fit)),
  validate_n_used = unname(v[1, "n"]), calibrate_n_used = unname(min(k[, "n"])),
  libraries_s = t_lib - t_start, read_s = t_read - t_lib, fit_s = t_fit - t_read,
  validate_s = t_val - t_fit, calibrate_s = t_cal - t_val
), out, digits = NA, auto_unbox = TRUE, pretty = TRUE)
