# Reference numbers for the risk groups of the nomogram (cementleak_stats/riskgroups.py;
# tests/test_riskgroups.py).
#
# R 4.2, survival 3.5, rms 6.5, jsonlite.  Run from the repository root:
#   Rscript tests/reference/riskgroups_reference.R
# Writes tests/reference/riskgroups_<name>.json (committed; CI never runs R).
#
# Total points of a patient, from rms: nom <- nomogram(cph_fit, lp = TRUE); info <- attr(nom, "info");
#   points = (predict(cph_fit, newdata, type = "lp") - info$Intercept) * info$sc
# Groups: tertiles (quantile type 7) of the development cohort's points, [cut_k, cut_k+1); or risk
#   cut-offs at the horizon (risk = 1 - Survival(fit)(u, lp)); the same cut-offs in the validation cohort.
# Per group: survfit at the horizon (1 - KM, Greenwood SE); survdiff(Surv(t, e) ~ group) (log-rank);
#   coxph(Surv(t, e) ~ group, ties = "efron") (HR against the lowest group, Wald CI and P).
source("tests/reference/survival_common.R")   # prepare(), screen_reference()
source("tests/reference/selected_model.R")     # model_vars()
suppressPackageStartupMessages({library(rms)})
out <- "tests/reference"

compare <- function(t, e, group, u) {
  k <- sort(unique(group))
  d <- data.frame(t = t, e = e, g = factor(group, levels = k))
  sd <- survdiff(Surv(t, e) ~ g, data = d)
  per <- lapply(k, function(j) {
    s <- summary(survfit(Surv(t, e) ~ 1, data = d[d$g == j, ]), times = u, extend = TRUE)
    list(group = j, n = sum(group == j), events = sum(e[group == j]), observed = 1 - s$surv, se_surv = s$std.err)
  })
  res <- list(groups = per, logrank = list(chisq = unname(sd$chisq), df = length(k) - 1,
                                           p_value = pchisq(sd$chisq, length(k) - 1, lower.tail = FALSE)))
  if (all(sapply(k, function(j) sum(e[group == j]) > 0))) {
    cf <- coxph(Surv(t, e) ~ g, data = d, ties = "efron", control = coxph.control(eps = 1e-12, iter.max = 100))
    s <- summary(cf)
    res$hr <- list(hr = unname(s$conf.int[, 1]), ci_low = unname(s$conf.int[, 3]), ci_high = unname(s$conf.int[, 4]),
                   p_value = unname(s$coefficients[, 5]))
  }
  res
}

groups_reference <- function(name, study_file, data_file, validation_file = NULL, risk_cutoffs = NULL) {
  spec <- yaml::read_yaml(study_file)
  p <- prepare(spec, read.csv(data_file, stringsAsFactors = FALSE))
  d <- p$data
  vars <- model_vars(spec, p)
  u <- spec$outcome$horizon
  f <- as.formula(paste("Surv(tt_, ee_) ~", paste(vars, collapse = " + ")))
  dd <- datadist(d[, vars, drop = FALSE]); options(datadist = dd)
  assign("dd", dd, envir = .GlobalEnv)
  fit <- cph(f, data = d, x = TRUE, y = TRUE, surv = TRUE, time.inc = u, eps = 1e-12, tol = 1e-15, iter.max = 100)
  info <- attr(nomogram(fit, lp = TRUE), "info")
  points <- function(nd) (unname(predict(fit, newdata = nd, type = "lp")) - info$Intercept) * info$sc
  pts <- points(d)
  cuts <- unname(quantile(pts, c(1 / 3, 2 / 3)))
  S <- Survival(fit)                                       # rms: S(u, lp), the Efron baseline at the means
  risk <- function(nd) 1 - S(u, unname(predict(fit, newdata = nd, type = "lp")))
  res <- list(variables = vars, sc = info$sc, intercept = unname(info$Intercept), points = pts, cutoffs = cuts,
              development = compare(d$tt_, d$ee_, findInterval(pts, cuts) + 1, u))
  if (!is.null(risk_cutoffs)) {
    res$risk_cutoffs <- risk_cutoffs
    res$development_risk <- compare(d$tt_, d$ee_, findInterval(risk(d), risk_cutoffs) + 1, u)
  }
  if (!is.null(validation_file)) {
    v <- prepare(spec, read.csv(validation_file, stringsAsFactors = FALSE))$data
    pv <- points(v)
    res$validation_points <- pv
    res$validation <- compare(v$tt_, v$ee_, findInterval(pv, cuts) + 1, u)
  }
  res$source <- list(R = R.version.string, study_file = study_file, data_file = data_file,
                     data_md5 = unname(tools::md5sum(data_file)))
  write_json(res, file.path(out, paste0("riskgroups_", name, ".json")), digits = NA, auto_unbox = TRUE, pretty = TRUE)
  cat(name, "cut-offs", cuts, "log-rank", res$development$logrank$chisq, "\n")
}

groups_reference("shipped", "study.yaml", "data/cohort.csv", validation_file = "data/cohort_centre2.csv")
groups_reference("gbsg2", "tests/studies/gbsg2/study.yaml", "tests/studies/gbsg2/gbsg2.csv", risk_cutoffs = c(0.3, 0.6))
