//! Price labels for Spin Pet's tiny prices: enough significant digits, never `0.00`.
//!
//! Below 0.001 the leading zeros after the decimal point are written as a subscript count, as chart sites
//! do: 0.00000002796 → `0.0₇2796` (seven zeros, then the significant digits).

const SUBSCRIPTS: [char; 10] = ['₀', '₁', '₂', '₃', '₄', '₅', '₆', '₇', '₈', '₉'];

/// Formats `price` with `digits` significant digits.
pub fn format_price(price: f64, digits: usize) -> String {
    let digits = digits.max(1);
    if !price.is_finite() {
        return "—".into();
    }
    if price == 0.0 {
        return "0".into();
    }
    let sign = if price < 0.0 { "-" } else { "" };
    let price = price.abs();
    if price >= 0.001 {
        let magnitude = price.log10().floor() as i32;
        let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
        return format!("{sign}{price:.decimals$}");
    }
    // Scientific form gives the significant digits and the exponent exactly.
    let scientific = format!("{price:.prec$e}", prec = digits - 1);
    let (mantissa, exponent) = scientific.split_once('e').expect("scientific notation");
    let exponent: i32 = exponent.parse().expect("integer exponent");
    let significant: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let zeros = (-exponent - 1) as u32;
    let subscript: String = zeros
        .to_string()
        .chars()
        .map(|d| SUBSCRIPTS[d as usize - '0' as usize])
        .collect();
    format!("{sign}0.0{subscript}{significant}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_pet_prices_keep_their_digits() {
        assert_eq!(format_price(2.796e-8, 4), "0.0₇2796");
        assert_eq!(format_price(1.0e-9, 4), "0.0₈1000");
        assert_eq!(format_price(1.2346e-5, 4), "0.0₄1235");
        assert_eq!(format_price(0.000999, 3), "0.0₃999");
    }

    #[test]
    fn ordinary_prices_use_plain_decimals() {
        assert_eq!(format_price(0.0123456, 4), "0.01235");
        assert_eq!(format_price(1.5, 4), "1.500");
        assert_eq!(format_price(1234.5, 4), "1234");
        assert_eq!(format_price(0.0, 4), "0");
    }

    #[test]
    fn never_rounds_to_zero() {
        for exponent in 3..=12 {
            let price = 3.3 * 10f64.powi(-exponent);
            let label = format_price(price, 4);
            assert!(label.contains("33"), "{price} → {label}");
        }
    }
}
