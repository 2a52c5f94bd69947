# Reference for tests/test_shipped_data.py: the published significance pattern, computed by R on
# the SHIPPED synthetic files (data/cohort.csv, data/outcomes.csv) -- an implementation independent
# of lifelines / scipy.  Re-run after `make simulate`:
#   Rscript tests/reference/simulate_shipped.R   (from the project root)
# R 4.2, survival 3.5, jsonlite.
suppressPackageStartupMessages({library(survival); library(jsonlite); library(tools)})

cohort <- read.csv("data/cohort.csv", stringsAsFactors = FALSE, na.strings = "")
outcomes <- read.csv("data/outcomes.csv", stringsAsFactors = FALSE, na.strings = "")

# coding as cementleak_stats.design.encode (study.yaml): binary = 1 for the non-reference level,
# ordinal severity = score 0, 1, 2; nominal fracture_level = treatment contrasts vs thoracolumbar
d <- data.frame(
  time = cohort$time_to_leakage_months, event = cohort$leakage,
  age_years = cohort$age_years, sex = as.numeric(cohort$sex == "male"),
  bmi_kg_m2 = cohort$bmi_kg_m2, bmd_t_score = cohort$bmd_t_score, ct_value_hu = cohort$ct_value_hu,
  fracture_level = factor(cohort$fracture_level, levels = c("thoracolumbar", "thoracic", "lumbar")),
  fracture_severity = match(cohort$fracture_severity, c("mild", "moderate", "severe")) - 1,
  cortical_fracture = as.numeric(cohort$cortical_fracture == "yes"),
  intravertebral_cleft = as.numeric(cohort$intravertebral_cleft == "yes"),
  approach = as.numeric(cohort$approach == "bilateral"),
  cement_viscosity = as.numeric(cohort$cement_viscosity == "low"),
  cement_volume_ml = cohort$cement_volume_ml, days_injury_to_surgery = cohort$days_injury_to_surgery)
candidates <- setdiff(names(d), c("time", "event"))

screen <- lapply(candidates, function(v) {
  fit <- coxph(as.formula(paste("Surv(time, event) ~", v)), data = d, ties = "efron")
  s <- summary(fit)
  list(variable = v, p_wald = unname(s$coefficients[, "Pr(>|z|)"]), p_lr = unname(s$logtest["pvalue"]))
})

five <- c("ct_value_hu", "fracture_severity", "cortical_fracture", "cement_viscosity", "cement_volume_ml")
fit <- coxph(as.formula(paste("Surv(time, event) ~", paste(five, collapse = " + "))), data = d, ties = "efron")
cf <- summary(fit)$coefficients
multi <- list(term = rownames(cf), coef = unname(cf[, "coef"]), se = unname(cf[, "se(coef)"]),
              hr = unname(cf[, "exp(coef)"]), p = unname(cf[, "Pr(>|z|)"]))

contrast <- function(measure, later, earlier) {
  w <- reshape(outcomes[, c("patient_id", "timepoint", measure)], idvar = "patient_id",
               timevar = "timepoint", direction = "wide")
  pairs <- list(c("day3", "preop"), c("month12", "preop"), c("month12", "day3"))
  pw <- sapply(pairs, function(p) suppressWarnings(wilcox.test(w[[paste0(measure, ".", p[1])]],
                    w[[paste0(measure, ".", p[2])]], paired = TRUE))$p.value)
  pt <- sapply(pairs, function(p) t.test(w[[paste0(measure, ".", p[1])]],
                    w[[paste0(measure, ".", p[2])]], paired = TRUE)$p.value)
  i <- which(sapply(pairs, function(p) identical(p, c(later, earlier))))
  list(measure = measure, later = later, earlier = earlier,
       p_wilcoxon_holm = p.adjust(pw, "holm")[i], p_t_holm = p.adjust(pt, "holm")[i],
       mean_diff = mean(w[[paste0(measure, ".", later)]] - w[[paste0(measure, ".", earlier)]]))
}
contrasts <- list(contrast("vas", "day3", "preop"), contrast("vas", "month12", "preop"),
                  contrast("odi_percent", "month12", "day3"))

out <- list(
  cohort_md5 = unname(md5sum("data/cohort.csv")), outcomes_md5 = unname(md5sum("data/outcomes.csv")),
  r_version = R.version.string, survival_version = as.character(packageVersion("survival")),
  n = nrow(cohort), events = sum(cohort$leakage), screen = screen, multivariable = multi,
  contrasts = contrasts)
write_json(out, "tests/reference/simulate_shipped_r.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
