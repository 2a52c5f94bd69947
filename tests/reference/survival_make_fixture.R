# Writes data/study_fixture.csv: a SYNTHETIC cohort in the layout of the project's study.yaml,
# made only to test the Cox / PH / concordance code against R survival.  It is NOT the shipped
# cohort (data/cohort.csv, made by the package's own simulator).
#
# Features the tests need: every study.yaml column; times in whole months (many tied event
# times, censoring tied with events); loss to follow-up before 12 months (so IPCW weights are
# not all 1); everyone else censored exactly at 12 months (METHODS.md trap).
#
# Run: Rscript tests/reference/survival_make_fixture.R   (from the repository root)
set.seed(20250427)
n <- 150
pick <- function(levels, prob) sample(levels, n, replace = TRUE, prob = prob)
clip <- function(x, lo, hi) pmin(pmax(x, lo), hi)

d <- data.frame(patient_id = sprintf("F%03d", seq_len(n)))
d$age_years <- clip(round(rnorm(n, 72, 8)), 40, 100)
d$sex <- pick(c("female", "male"), c(0.78, 0.22))
d$bmi_kg_m2 <- round(clip(rnorm(n, 23.5, 3), 12, 45), 1)
d$bmd_t_score <- round(clip(rnorm(n, -3.2, 0.7), -6, 1), 1)
d$ct_value_hu <- clip(round(rnorm(n, 80, 22)), 0, 250)
d$fracture_level <- pick(c("thoracic", "thoracolumbar", "lumbar"), c(0.25, 0.5, 0.25))
d$fracture_severity <- pick(c("mild", "moderate", "severe"), c(0.35, 0.4, 0.25))
d$cortical_fracture <- pick(c("no", "yes"), c(0.7, 0.3))
d$intravertebral_cleft <- pick(c("no", "yes"), c(0.8, 0.2))
d$approach <- pick(c("unilateral", "bilateral"), c(0.6, 0.4))
d$cement_viscosity <- pick(c("high", "low"), c(0.5, 0.5))
d$cement_volume_ml <- round(clip(rnorm(n, 4.5, 1.2), 0.5, 15), 1)
d$days_injury_to_surgery <- clip(round(rexp(n, 1 / 14)), 0, 365)

sev <- match(d$fracture_severity, c("mild", "moderate", "severe")) - 1
lp <- -0.035 * (d$ct_value_hu - 80) + 0.7 * sev + 1.1 * (d$cement_viscosity == "low") +
  1.2 * (d$cortical_fracture == "yes") + 0.5 * (d$cement_volume_ml - 4.5)
t_event <- ceiling(rexp(n, 0.005 * exp(lp)))             # whole months: tied event times
t_drop <- ifelse(runif(n) < 0.2, sample(1:11, n, replace = TRUE), Inf)
d$time_to_leakage_months <- pmin(t_event, t_drop, 12)
d$leakage <- as.integer(t_event <= pmin(t_drop, 12))
ltype <- sample(c("intradiscal_endplate", "pulmonary_embolism", "symptomatic"), n,
                replace = TRUE, prob = c(0.88, 0.04, 0.08))
d$leakage_type <- ifelse(d$leakage == 1, ltype, "none")
d$management <- c(none = "none", intradiscal_endplate = "no_treatment",
                  pulmonary_embolism = "respiratory_medicine",
                  symptomatic = "endoscopic_removal")[d$leakage_type]
write.csv(d, "tests/reference/data/study_fixture.csv", row.names = FALSE)
cat("n =", n, " events =", sum(d$leakage), " distinct event times =",
    length(unique(d$time_to_leakage_months[d$leakage == 1])), "\n")
