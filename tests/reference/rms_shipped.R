# rms reference numbers for the SHIPPED synthetic cohort (data/cohort.csv) and the model the
# study's univariable screen selects on it (ct_value_hu, fracture_severity, cortical_fracture,
# cement_viscosity, cement_volume_ml): nomogram, validate, calibrate (KM, m = 25), smooth
# calibration, calibration line, Brier score.  See rms_common.R; used by test_nomogram.py,
# test_resample.py and test_calibration.py, which fail when the cohort file changes (md5).
# Run from the repository root:  Rscript tests/reference/rms_shipped.R

suppressMessages({
  library(survival)
  library(rms)
  library(jsonlite)
  library(riskRegression)
})
out <- "tests/reference"
source(file.path(out, "rms_common.R"))
path <- "data/cohort.csv"
raw <- read.csv(path)
d <- data.frame(
  ct_value_hu = raw$ct_value_hu,
  fracture_severity = match(raw$fracture_severity, c("mild", "moderate", "severe")) - 1,   # score coding
  cortical_fracture = factor(raw$cortical_fracture, levels = c("no", "yes")),
  cement_viscosity = factor(raw$cement_viscosity, levels = c("high", "low")),
  cement_volume_ml = raw$cement_volume_ml,
  time = raw$time_to_leakage_months, ev = raw$leakage)
dd <- datadist(d); options(datadist = "dd")
preds <- c("ct_value_hu", "fracture_severity", "cortical_fracture", "cement_viscosity", "cement_volume_ml")
fit <- cph(Surv(time, ev) ~ ct_value_hu + fracture_severity + cortical_fracture + cement_viscosity + cement_volume_ml,
           data = d, x = TRUE, y = TRUE, surv = TRUE, time.inc = 12, eps = 1e-12, tol = 1e-15, iter.max = 100)
res <- rms_outputs(fit, d, preds, u = 12, m_group = 25, val_runs = 40, cal_runs = 40, seed = 11)
res$data <- list(file = path, md5 = unname(tools::md5sum(path)), variables = preds)
write_json(res, file.path(out, "rms_shipped.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("done\n")
