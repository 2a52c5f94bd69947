# Reference for tests/test_reliability_missing.py: Rubin's rules as R mice 3.15 pools them.
#
# Rscript tests/reference/reliability_mi.R   (from the repository root; R 4.2, survival 3.5, mice 3.15)
#
# 1. reliability_mi_pool.csv: the five stored imputations (reliability_mi_imputations.csv, made by
#    reliability_mi_make.py) -> as.mids -> with(coxph(..., ties = "efron")) -> pool(dfcom = events - p)
#    -> summary(conf.int = TRUE).  Coding as the study file: fracture_severity is a score 0/1/2,
#    cortical_fracture yes = 1, cement_viscosity low = 1 (reference high).
# 2. reliability_mi_scalar.json: mice::pool.scalar on a small hand example (Q, U given), once with
#    a finite complete-data df (n - k) and once with n = Inf (Rubin 1987 df).
suppressPackageStartupMessages({library(survival); library(mice); library(jsonlite)})
here <- "tests/reference"
long <- read.csv(file.path(here, "reliability_mi_imputations.csv"), check.names = FALSE,
                 na.strings = "", stringsAsFactors = FALSE)
long$fracture_severity <- match(long$fracture_severity, c("mild", "moderate", "severe")) - 1
long$cortical_fracture <- as.numeric(long$cortical_fracture == "yes")
long$cement_viscosity <- as.numeric(long$cement_viscosity == "low")
# the incomplete rows (.imp = 0) keep NA after the recoding
imp <- as.mids(long)
fit <- with(imp, coxph(Surv(time_to_leakage_months, leakage) ~ ct_value_hu + fracture_severity +
                         cortical_fracture + cement_viscosity + cement_volume_ml, ties = "efron"))
events <- sum(long$leakage[long$.imp == 1])
p <- 5
pooled <- pool(fit, dfcom = events - p)
s <- summary(pooled, conf.int = TRUE, conf.level = 0.95)
out <- data.frame(term = as.character(pooled$pooled$term), estimate = pooled$pooled$estimate,
                  ubar = pooled$pooled$ubar, b = pooled$pooled$b, t = pooled$pooled$t,
                  dfcom = pooled$pooled$dfcom, df = pooled$pooled$df, riv = pooled$pooled$riv,
                  lambda = pooled$pooled$lambda, fmi = pooled$pooled$fmi, std_error = s$std.error,
                  statistic = s$statistic, p_value = s$p.value, conf_low = s[["2.5 %"]],
                  conf_high = s[["97.5 %"]])
write.csv(out, file.path(here, "reliability_mi_pool.csv"), row.names = FALSE)

# hand example: Q = (1.0, 1.2, 0.8), U = (0.04, 0.05, 0.06)
Q <- c(1.0, 1.2, 0.8); U <- c(0.04, 0.05, 0.06)
finite <- pool.scalar(Q, U, n = 30, k = 2)   # dfcom = 28
large <- pool.scalar(Q, U)                   # dfcom = Inf
pick <- function(r) r[c("qbar", "ubar", "b", "t", "df", "r", "fmi")]
write_json(list(Q = Q, U = U, dfcom = 28, finite = pick(finite), large = pick(large)),
           file.path(here, "reliability_mi_scalar.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
